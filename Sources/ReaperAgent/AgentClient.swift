import Foundation
import ReaperCore
import SystemCalls
import SystemPackage


/// A small blocking HTTP/1.1 client for the agent's Unix socket, used by
/// `volume-reaper idle`, `status` and `reconcile`.
public struct AgentClient: Sendable {
    public var socketPath: String
    public var timeout: TimeInterval

    public init(socketPath: String, timeout: TimeInterval = 120) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: Data
    }

    /// Sends one request and reads the whole response (`Connection: close`).
    public func request(_ method: String, _ path: String) throws(AgentClientError) -> Response {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AgentClientError(socketPath: socketPath, message: "socket: \(Errno(rawValue: errno))", daemonMissing: false) }
        defer { close(fd) }
        var seconds = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &seconds, socklen_t(MemoryLayout<timeval>.size))
        guard let address = UnixSocketAddress(socketPath) else {
            throw AgentClientError(socketPath: socketPath, message: "socket path too long", daemonMissing: false)
        }
        let connected = address.withSockaddr { connect(fd, $0, $1) }
        if connected != 0 {
            let error = Errno(rawValue: errno)
            let missing = error == .noSuchFileOrDirectory || error == .connectionRefused
            throw AgentClientError(socketPath: socketPath, message: "\(error)", daemonMissing: missing)
        }
        let request = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        var sent = 0
        let bytes = Array(request.utf8)
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw AgentClientError(socketPath: socketPath, message: "write: \(Errno(rawValue: errno))", daemonMissing: false)
            }
            sent += written
        }
        var response = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw AgentClientError(socketPath: socketPath, message: "read: \(Errno(rawValue: errno))", daemonMissing: false)
            }
            if count == 0 { break }
            response.append(contentsOf: buffer[0..<count])
        }
        return try parse(response)
    }

    private func parse(_ data: Data) throws(AgentClientError) -> Response {
        let separator = Data("\r\n\r\n".utf8)
        guard let range = data.range(of: separator),
              let head = String(data: data[..<range.lowerBound], encoding: .utf8),
              let statusLine = head.split(separator: "\r\n").first else {
            throw AgentClientError(socketPath: socketPath, message: "malformed HTTP response", daemonMissing: false)
        }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw AgentClientError(socketPath: socketPath, message: "malformed status line: \(UserText.excerpt(statusLine, quoting: true))", daemonMissing: false)
        }
        var body = Data(data[range.upperBound...])
        if head.lowercased().contains("transfer-encoding: chunked") { body = Self.dechunk(body) }
        return Response(status: status, body: body)
    }

    static func dechunk(_ data: Data) -> Data {
        var output = Data()
        var index = data.startIndex
        while index < data.endIndex {
            guard let lineEnd = data[index...].range(of: Data("\r\n".utf8)),
                  let sizeText = String(data: data[index..<lineEnd.lowerBound], encoding: .utf8),
                  let size = Int(sizeText.split(separator: ";")[0].trimmingCharacters(in: .whitespaces), radix: 16) else { break }
            if size == 0 { break }
            let start = lineEnd.upperBound
            let end = data.index(start, offsetBy: size, limitedBy: data.endIndex) ?? data.endIndex
            output.append(data[start..<end])
            index = data.index(end, offsetBy: 2, limitedBy: data.endIndex) ?? data.endIndex
        }
        return output
    }
}

public struct AgentClientError: Error, Sendable, CustomStringConvertible {
    public var socketPath: String
    public var message: String
    /// Nothing listens: the daemon is not running.
    public var daemonMissing: Bool

    /// One line whatever the path holds: it is escaped and cut, as policy errors show values.
    public var description: String {
        let path = UserText.excerpt(socketPath, limit: 120)
        if daemonMissing {
            return "no volume-reaper daemon answers on \(path) (\(message)); start it with `systemctl start volume-reaper` or `volume-reaper run`"
        }
        return "\(path): \(message)"
    }
}
