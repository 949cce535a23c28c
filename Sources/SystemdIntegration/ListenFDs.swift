#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd

/// Descriptors passed by systemd socket activation (a `.socket` unit), as
/// sd_listen_fds(3) describes: `LISTEN_PID` must be this process,
/// `LISTEN_FDS` counts descriptors starting at fd 3, and `LISTEN_FDNAMES`
/// names them (`FileDescriptorName=`), colon-separated.
///
/// The parsing is pure Swift over an environment dictionary so it can be
/// tested without exec'ing a child. The descriptors are not owned by this
/// value: whoever uses one (e.g. NIO's `withBoundSocket`) closes it.
public struct ListenFDs: Sendable, Hashable {
    /// One passed descriptor and its name (`"unknown"` when systemd gave none).
    public struct Descriptor: Sendable, Hashable {
        public var fd: Int32
        public var name: String

        public init(fd: Int32, name: String) {
            self.fd = fd
            self.name = name
        }
    }

    /// `SD_LISTEN_FDS_START`: the first passed descriptor.
    public static let firstDescriptor: Int32 = 3

    /// The passed descriptors, in order (fd 3, 4, ...).
    public var descriptors: [Descriptor]

    public var isEmpty: Bool { self.descriptors.isEmpty }

    /// Wraps descriptors obtained some other way (and lets tests use real sockets).
    public init(descriptors: [Descriptor]) {
        self.descriptors = descriptors
    }

    /// Parses `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from `environment`.
    /// Variables missing or addressed to another pid mean no descriptors (the
    /// variables were inherited, not meant for us); malformed ones throw,
    /// naming the variable.
    public init(environment: [String: String], pid: pid_t = getpid()) throws(SystemdError) {
        self.descriptors = []
        guard let pidText = environment["LISTEN_PID"] else { return }
        guard let listenPID = pid_t(pidText), listenPID > 0 else {
            throw SystemdError(code: .invalidEnvironment, detail: "LISTEN_PID=\(pidText): not a process id")
        }
        guard listenPID == pid else { return }
        guard let countText = environment["LISTEN_FDS"] else { return }
        guard let count = Int32(countText), count >= 0, count <= Int32.max - Self.firstDescriptor else {
            throw SystemdError(code: .invalidEnvironment, detail: "LISTEN_FDS=\(countText): not a descriptor count")
        }
        guard count > 0 else { return }

        let names: [String]
        if let namesText = environment["LISTEN_FDNAMES"] {
            names = namesText.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard names.count == Int(count) else {
                throw SystemdError(
                    code: .invalidEnvironment,
                    detail: "LISTEN_FDNAMES=\(namesText): \(names.count) names for LISTEN_FDS=\(count)"
                )
            }
        } else {
            names = Array(repeating: "unknown", count: Int(count))
        }
        self.descriptors = names.enumerated().map { index, name in
            Descriptor(fd: Self.firstDescriptor + Int32(index), name: name)
        }
    }

    /// Takes the descriptors passed to this process: parses the environment,
    /// unsets the three variables (so children do not inherit them, like
    /// `sd_listen_fds(1)`; even when they were malformed) and marks every
    /// descriptor close-on-exec. Call early in `main`, before threads start:
    /// `unsetenv` is not thread-safe.
    public static func takeFromProcess() throws(SystemdError) -> ListenFDs {
        let names = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]
        let environment = processEnvironment(names)
        defer { for name in names { unsetenv(name) } }
        let fds = try ListenFDs(environment: environment)
        try fds.setCloseOnExec()
        return fds
    }

    /// Sets `FD_CLOEXEC` on every descriptor (systemd passes them without it).
    public func setCloseOnExec() throws(SystemdError) {
        for descriptor in self.descriptors {
            let fd = descriptor.fd
            let flags = try retryingSyscall("fcntl", detail: "fd \(fd) (\(descriptor.name)), F_GETFD") {
                fcntl(fd, F_GETFD)
            }
            if flags & FD_CLOEXEC == 0 {
                _ = try retryingSyscall("fcntl", detail: "fd \(fd) (\(descriptor.name)), F_SETFD") {
                    fcntl(fd, F_SETFD, flags | FD_CLOEXEC)
                }
            }
        }
    }

    /// The first descriptor that is a listening `AF_UNIX` `SOCK_STREAM`
    /// socket, among those named `name` (any name if `nil`); what the socket
    /// API serves HTTP on. Checked with `sd_is_socket_unix`, so a datagram,
    /// TCP or non-listening socket passed by mistake is not picked.
    public func unixListener(named name: String? = nil) -> Int32? {
        self.descriptors.first { descriptor in
            (name == nil || descriptor.name == name)
                && sd_is_socket_unix(descriptor.fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0
        }?.fd
    }
}
