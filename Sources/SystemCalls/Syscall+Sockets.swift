#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

extension Syscall {
    /// What a non-blocking `connect(2)` to a Unix socket found.
    public enum UnixSocketProbe: Sendable, Hashable {
        /// Someone accepts (or the backlog is full: someone listens).
        case accepting
        /// `ECONNREFUSED`: a socket file nobody listens on.
        case refused
        /// `ENOENT`: the file went away.
        case vanished
    }

    /// A non-blocking stream `socket(2)` and `connect(2)` to `address`, closed again.
    public static func probeUnixSocket(_ address: UnixSocketAddress) throws(SystemCallError) -> UnixSocketProbe {
        let fd = try retryingEINTR("socket", path: address.path) {
            Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        }
        defer { _ = Glibc.close(fd) }
        let result = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if result == 0 { return .accepting }
        switch Glibc.errno {
        case EAGAIN, EINPROGRESS, EINTR: return .accepting
        case ECONNREFUSED: return .refused
        case ENOENT: return .vanished
        case let code: throw SystemCallError(call: "connect", errno: Errno(rawValue: code), path: address.path)
        }
    }

    /// A blocking `socket(2)` of `AF_UNIX` (stream, or datagram when asked),
    /// close-on-exec, `connect(2)`ed to `address`; closed again when the
    /// connect fails. A `receiveTimeout` (seconds) bounds each read (`SO_RCVTIMEO`).
    public static func connectUnixSocket(
        _ address: UnixSocketAddress, datagram: Bool = false, receiveTimeout: Int? = nil
    ) throws(SystemCallError) -> FileDescriptor {
        let type = datagram ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue)
        let fd = try retryingEINTR("socket", path: address.path) {
            Glibc.socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        if let receiveTimeout {
            var seconds = timeval(tv_sec: receiveTimeout, tv_usec: 0)
            _ = Glibc.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        }
        // A connect interrupted by a signal goes on in the background: not retried.
        if address.withSockaddr({ Glibc.connect(fd, $0, $1) }) != 0 {
            let code = Glibc.errno
            _ = Glibc.close(fd)
            throw SystemCallError(call: "connect", errno: Errno(rawValue: code), path: address.path)
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Whether `fd` is a stream socket (`getsockopt(SO_TYPE)`).
    public static func isStreamSocket(_ fd: Int32) throws(SystemCallError) -> Bool {
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try retryingEINTR("getsockopt(SO_TYPE)") { Glibc.getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) }
        return type == Int32(SOCK_STREAM.rawValue)
    }

    /// Whether `text` is a numeric IPv4 (or, with `ipv6`, IPv6) address (`inet_pton(3)`).
    public static func isNumericAddress(_ text: String, ipv6: Bool) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16)
        return inet_pton(ipv6 ? AF_INET6 : AF_INET, text, &buffer) == 1
    }
}

/// `SO_PEERCRED` at `SOL_SOCKET`: the credentials of a Unix socket's peer at
/// `connect()` time, read as `{ pid: Int32, uid: UInt32, gid: UInt32 }`.
public enum PeerCredentialOption {
    public static let level = Int32(SOL_SOCKET)
    public static let name = Int32(SO_PEERCRED)
}
