#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one error type of this module, thrown with typed throws so callers know
/// exactly what can fail: a system call (with its name and errno) or a bad
/// value in a systemd-provided environment variable (naming the variable).
public struct SystemdError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; a struct so new codes do not break callers.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Kind: Sendable, Hashable {
            case systemCall, invalidEnvironment, unsupportedAddress
        }

        private let kind: Kind

        /// A system call failed; `call` and `errno` say which and why.
        public static let systemCall = Code(kind: .systemCall)
        /// A variable set by systemd (`LISTEN_FDS`, `NOTIFY_SOCKET`, ...) is malformed.
        public static let invalidEnvironment = Code(kind: .invalidEnvironment)
        /// `NOTIFY_SOCKET` names an address family this client does not speak (e.g. `vsock:`).
        public static let unsupportedAddress = Code(kind: .unsupportedAddress)

        public var description: String {
            switch self.kind {
            case .systemCall: "system call failed"
            case .invalidEnvironment: "invalid environment"
            case .unsupportedAddress: "unsupported address"
            }
        }
    }

    /// What went wrong.
    public var code: Code
    /// The failing system call (`socket`, `sendto`, `fcntl`, ...), for `.systemCall`.
    public var call: String?
    /// The errno the call left, for `.systemCall`.
    public var errno: Int32?
    /// The path, address or variable at fault, so the message names it.
    public var detail: String

    /// Creates an error; most callers use the static helpers below.
    public init(code: Code, call: String? = nil, errno: Int32? = nil, detail: String) {
        self.code = code
        self.call = call
        self.errno = errno
        self.detail = detail
    }

    /// A failed system call named `call` with `errno`, about `detail`.
    public static func systemCall(_ call: String, errno: Int32, detail: String) -> SystemdError {
        SystemdError(code: .systemCall, call: call, errno: errno, detail: detail)
    }

    public var description: String {
        if let call, let errno {
            return "\(call)(\(self.detail)) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
        return "\(self.code): \(self.detail)"
    }
}

/// Runs a system call, retrying on `EINTR` (a signal is no failure), and turns
/// `-1` into a typed error naming the call; same shape as swift-nio's wrappers.
@inline(__always)
func retryingSyscall<R: BinaryInteger>(
    _ call: String,
    detail: @autoclosure () -> String,
    _ body: () -> R
) throws(SystemdError) -> R {
    while true {
        let result = body()
        if result != -1 { return result }
        let err = errno
        if err == EINTR { continue }
        throw SystemdError.systemCall(call, errno: err, detail: detail())
    }
}

/// Reads the named variables from the process environment (getenv, no copy of
/// `environ`), so the default initializers can share the injected-dictionary path.
func processEnvironment(_ names: [String]) -> [String: String] {
    var result: [String: String] = [:]
    for name in names {
        if let value = getenv(name) {
            result[name] = String(cString: value)
        }
    }
    return result
}
