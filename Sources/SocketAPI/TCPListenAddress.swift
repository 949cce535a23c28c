import SystemCalls

/// Where the metrics listener binds: `[HOST]:PORT` with an IP address host
/// (`:9847` is every IPv4 address, `127.0.0.1:9847`, `[::]:9847`).
public struct TCPListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// nil unless `text` is `[HOST]:PORT` with an IPv4 host, a bracketed IPv6
    /// host or none, and a port from 1 to 65535.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard (1...5).contains(portText.count), portText.allSatisfy({ $0.isASCII && $0.isNumber }), !portText.hasPrefix("0"),
              let port = Int(portText), (1...65535).contains(port) else { return nil }
        if host.isEmpty {
            host = "0.0.0.0"
        } else if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard Self.isAddress(host, ipv6: true) else { return nil }
        } else {
            guard Self.isAddress(host, ipv6: false) else { return nil }
        }
        self.host = host
        self.port = port
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func isAddress(_ text: String, ipv6: Bool) -> Bool {
        Syscall.isNumericAddress(text, ipv6: ipv6)
    }
}
