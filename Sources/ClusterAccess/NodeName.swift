import Foundation
import ReaperCore

/// Which node the agent runs on, for `fieldSelector=spec.nodeName=<name>`.
public enum NodeName {
    /// The prefix of a kubelet's user name under the Node authorizer.
    static let nodeUserPrefix = "system:node:"

    /// The node's name and which setting gave it, in this order:
    /// `podSource.nodeName` (`configured`), `NODE_NAME`, the kubeconfig user
    /// `system:node:<name>`, the hostname (lowercased, as the kubelet does).
    /// nil when none of them gives a name.
    public static func resolve(
        configured: String?, environment: [String: String], kubeconfigUserName: String?, hostname: () -> String?
    ) -> (name: String, source: String)? {
        if let name = usable(configured) { return (name, "podSource.nodeName") }
        if let name = usable(environment["NODE_NAME"]) { return (name, "NODE_NAME") }
        if let user = kubeconfigUserName, user.hasPrefix(nodeUserPrefix), let name = usable(String(user.dropFirst(nodeUserPrefix.count))) {
            return (name, "kubeconfig user \(user)")
        }
        if let name = usable(hostname()?.lowercased()) { return (name, "hostname") }
        return nil
    }

    static func usable(_ text: String?) -> String? {
        guard let trimmed = text?.trimmingCharacters(in: .whitespacesAndNewlines), !trimmed.isEmpty else { return nil }
        return trimmed
    }

    /// `name` when it is a node name, a DNS subdomain as Kubernetes requires
    /// (RFC 1123: lowercase letters, digits, '-' and '.', labels starting and
    /// ending with a letter or digit, at most 253 characters); else an error
    /// naming `source`. Anything else would select no pod (a view vouching
    /// every pod gone) or, in the kubelet URL, carry a port or a path of its own.
    public static func validated(_ name: String, source: String) throws(ClusterAccessError) -> String {
        guard isValid(name) else {
            throw ClusterAccessError(
                file: UserText.excerpt(source, limit: 120), field: nil,
                "\"\(UserText.excerpt(name))\" is not a node name (a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253 characters)"
            )
        }
        return name
    }

    /// Whether `name` is a DNS subdomain, the form of every node name.
    public static func isValid(_ name: String) -> Bool {
        guard (1...253).contains(name.utf8.count) else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let bytes = Array(label.utf8)
            func alphanumeric(_ byte: UInt8) -> Bool { (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) }
            guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
            return alphanumeric(first) && alphanumeric(last) && bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") }
        }
    }
}
