import Foundation
import ReaperCore

/// The API server's (or kubelet's) base URL, checked and normalized.
enum ServerURL {
    /// `https://host[:port][/path]` without a trailing slash. Plain `http`
    /// is allowed to a loopback address only (`kubectl proxy`), so a token
    /// never crosses a network in the clear.
    static func normalize(_ text: String, file: String, field: String) throws(ClusterAccessError) -> String {
        let quoted = "\"\(UserText.excerpt(text))\""
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty
        else {
            throw ClusterAccessError(file: file, field: field, "\(quoted) is not a URL such as https://10.0.0.1:6443")
        }
        switch scheme {
        case "https": break
        case "http" where ["127.0.0.1", "::1", "localhost"].contains(host.lowercased()):
            break
        default:
            throw ClusterAccessError(file: file, field: field, "\(quoted): only https is supported (plain http only to a loopback address)")
        }
        if components.query != nil || components.fragment != nil || components.user != nil {
            throw ClusterAccessError(file: file, field: field, "\(quoted): a server URL has no query, fragment or user part")
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
}
