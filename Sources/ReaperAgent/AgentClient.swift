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
        guard let address = UnixSocketAddress(socketPath) else {
            throw AgentClientError(socketPath: socketPath, message: "socket path too long", daemonMissing: false)
        }
        let fd: FileDescriptor
        do {
            fd = try Syscall.connectUnixSocket(address, receiveTimeout: Int(timeout))
        } catch where error.call == "connect" {
            let missing = error.errno == .noSuchFileOrDirectory || error.errno == .connectionRefused
            throw AgentClientError(socketPath: socketPath, message: "\(error.errno)", daemonMissing: missing)
        } catch {
            throw AgentClientError(socketPath: socketPath, message: "\(error.call): \(error.errno)", daemonMissing: false)
        }
        defer { Syscall.close(fd) }
        let request = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        var response = Data()
        do throws(SystemCallError) {
            try Syscall.writeAll(fd, Array(request.utf8))
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = try buffer.withUnsafeMutableBytes { buffer in
                    Result { () throws(SystemCallError) -> Int in try Syscall.read(fd, into: buffer) }
                }.get()
                if count == 0 { break }
                response.append(contentsOf: buffer[0..<count])
            }
        } catch {
            throw AgentClientError(socketPath: socketPath, message: "\(error.call): \(error.errno)", daemonMissing: false)
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
