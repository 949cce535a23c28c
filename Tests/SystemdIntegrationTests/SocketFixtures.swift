#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Real sockets and temp directories for the tests (no mocks): each fixture
/// cleans up after itself.

struct FixtureError: Error, CustomStringConvertible {
    var call: String
    var errno: Int32
    var description: String { "\(self.call) failed: \(String(cString: strerror(self.errno)))" }
}

@discardableResult
func check<R: BinaryInteger>(_ call: String, _ result: R) throws -> R {
    if result == -1 { throw FixtureError(call: call, errno: errno) }
    return result
}

/// A fresh directory under /tmp (short, so socket paths fit in sun_path).
final class TempDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/vr-systemd-XXXXXX".utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let result else { throw FixtureError(call: "mkdtemp", errno: errno) }
        self.path = String(cString: result)
    }

    deinit {
        // Only files and sockets are created inside, never subdirectories.
        if let dir = opendir(self.path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                if name != "." && name != ".." { unlink(self.path + "/" + name) }
            }
            closedir(dir)
        }
        rmdir(self.path)
    }
}

/// Fills a sockaddr_un for a path or (with a leading "@") an abstract name.
func unixAddress(_ name: String) -> (sockaddr_un, socklen_t) {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
    let length = withUnsafeMutableBytes(of: &addr.sun_path) { path -> Int in
        if name.hasPrefix("@") {
            let bytes = Array(name.utf8.dropFirst())
            path[0] = 0
            UnsafeMutableRawBufferPointer(rebasing: path[1...]).copyBytes(from: bytes)
            return offset + 1 + bytes.count
        }
        let bytes = Array(name.utf8)
        path.copyBytes(from: bytes)
        return offset + bytes.count + 1
    }
    return (addr, socklen_t(length))
}

/// An open socket closed on deinit.
final class Socket {
    let fd: Int32

    init(domain: Int32, type: Int32, cloexec: Bool = true) throws {
        self.fd = try check("socket", socket(domain, type | (cloexec ? Int32(SOCK_CLOEXEC.rawValue) : 0), 0))
    }

    deinit { close(self.fd) }

    func bind(unix name: String) throws {
        var (addr, length) = unixAddress(name)
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(self.fd, $0, length) }
        }
        try check("bind", result)
    }

    func bindLoopbackTCP() throws {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(self.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try check("bind", result)
    }

    func listen() throws {
        try check("listen", Glibc.listen(self.fd, 8))
    }

    /// One datagram as text, waiting at most two seconds.
    func receiveDatagram() throws -> String {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        try check(
            "setsockopt",
            setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        )
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = try buffer.withUnsafeMutableBytes { raw in
            try check("recv", recv(self.fd, raw.baseAddress, raw.count, 0))
        }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    static func datagram(boundTo name: String) throws -> Socket {
        let socket = try Socket(domain: AF_UNIX, type: Int32(SOCK_DGRAM.rawValue))
        try socket.bind(unix: name)
        return socket
    }
}

/// A name no other test run uses, for identifiers and abstract sockets.
func uniqueName(_ prefix: String) -> String {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return "\(prefix)-\(getpid())-\(now.tv_sec)\(now.tv_nsec)-\(UInt32.random(in: 0...UInt32.max))"
}
