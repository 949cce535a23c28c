import Foundation
import NIOCore
import ReaperCore

/// A server URL checked as the agent will connect to it (scheme, host, a
/// port of 1-65535), for settings read outside this module
/// (`podSource.kubeletURL`): the same rules as a kubeconfig's `server`.
public enum ClusterURL {
    /// `text` without a trailing slash, or one line naming `field` and the value.
    public static func validated(_ text: String, field: String) throws(ClusterAccessError) -> String {
        try ServerURL.normalize(text, file: field, field: nil)
    }
}

/// The API server's (or kubelet's) base URL, checked and normalized. Every
/// URL the agent connects to passes here first: NIO traps on a port over
/// 65535 and a resolver wraps it silently, so the authority is read by hand
/// and the port checked (1-65535) before anything else sees it.
enum ServerURL {
    /// Where plain http is allowed (`kubectl proxy`): a token never crosses a network in the clear.
    static let loopbackHosts: Set<String> = ["127.0.0.1", "::1", "localhost"]

    /// `https://host[:port][/path]` without a trailing slash. A problem is
    /// one line naming `file`, `field` (when there is one) and the value.
    static func normalize(_ text: String, file: String, field: String?) throws(ClusterAccessError) -> String {
        let quoted = "\"\(UserText.excerpt(text))\""
        func refuse(_ reason: String) -> ClusterAccessError {
            ClusterAccessError(file: file, field: field, "\(quoted): \(reason)")
        }
        guard let authority = Authority(text) else {
            throw ClusterAccessError(file: file, field: field, "\(quoted) is not a URL such as https://10.0.0.1:6443")
        }
        if let problem = authority.problem { throw refuse(problem) }
        switch authority.scheme {
        case "https": break
        case "http" where loopbackHosts.contains(authority.host.lowercased()): break
        default: throw refuse("only https:// is supported (plain http:// only to a loopback address)")
        }
        guard let components = URLComponents(string: text), components.host?.isEmpty == false else {
            throw ClusterAccessError(file: file, field: field, "\(quoted) is not a URL such as https://10.0.0.1:6443")
        }
        if components.query != nil || components.fragment != nil || components.user != nil {
            throw refuse("a server URL has no query, fragment or user part")
        }
        var normalized = text
        while normalized.hasSuffix("/") { normalized.removeLast() }
        return normalized
    }

    /// `https://host:port`, bracketing an IPv6 address.
    static func make(host: String, port: String) -> String {
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "https://\(bracketed):\(port)"
    }

    /// The scheme, host and port of a URL, read as RFC 3986 writes them.
    struct Authority {
        var scheme: String
        /// Without the brackets of an IPv6 literal.
        var host: String
        var port: Int?
        /// Why the authority is unusable, one clause; nil when it is fine.
        var problem: String?

        /// nil when `text` has no `scheme://` at all.
        init?(_ text: String) {
            guard let separator = text.range(of: "://") else { return nil }
            scheme = text[..<separator.lowerBound].lowercased()
            let rest = text[separator.upperBound...]
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            host = ""
            if authority.contains("@") {
                problem = "a server URL has no query, fragment or user part"
                return
            }
            var portText: Substring?
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else {
                    problem = "an IPv6 address without its closing bracket"
                    return
                }
                host = String(authority[authority.index(after: authority.startIndex)..<close])
                let after = authority[authority.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":") else {
                        problem = "only a port may follow an IPv6 address"
                        return
                    }
                    portText = after.dropFirst()
                }
                if (try? SocketAddress(ipAddress: host, port: 443))?.protocol != .inet6 {
                    problem = "\"\(UserText.excerpt(host))\" in brackets is not an IPv6 address"
                    return
                }
            } else {
                let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                host = String(parts[0])
                if parts.count == 2 {
                    portText = parts[1]
                    if parts[1].contains(":") {
                        problem = "an IPv6 address must be in brackets, e.g. https://[fd00::1]:6443"
                        return
                    }
                }
            }
            if host.isEmpty {
                problem = "no host"
                return
            }
            if let portText {
                // Digits only: Int("+443") parses, and a resolver may wrap 70000 to 4464.
                guard !portText.isEmpty, portText.count <= 5, portText.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                      let number = Int(portText), (1...65535).contains(number)
                else {
                    problem = "port \"\(UserText.excerpt(portText, limit: 24))\" is not a port number (1-65535)"
                    return
                }
                port = number
            }
        }
    }
}
