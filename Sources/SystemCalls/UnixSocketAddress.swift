#if canImport(Glibc)
import Glibc
#endif

/// A file-system `AF_UNIX` socket address, built once for every bind and
/// connect the agent (and its tests) make.
public struct UnixSocketAddress: Sendable {
    /// Longest path `sun_path` holds with its terminating NUL.
    public static let maximumPathBytes = MemoryLayout<sockaddr_un>.size - MemoryLayout<sa_family_t>.size - 1

    public let path: String
    private let address: sockaddr_un

    /// nil when `path` does not fit in `sun_path`.
    public init?(_ path: String) {
        let bytes = Array(path.utf8)
        guard bytes.count <= Self.maximumPathBytes else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        self.path = path
        self.address = address
    }

    /// The raw `sockaddr_un`.
    public var raw: sockaddr_un { address }

    /// Calls `body` with the address as `bind(2)`/`connect(2)` take it.
    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) rethrows -> T {
        var copy = address
        return try withUnsafePointer(to: &copy) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
