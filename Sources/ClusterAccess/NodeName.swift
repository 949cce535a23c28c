import Foundation

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

    /// (scaffolding for the issue 18 tests; checks nothing yet)
    public static func validated(_ name: String, source: String) throws(ClusterAccessError) -> String { name }
}
