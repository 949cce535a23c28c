import Foundation

/// A kubeconfig user's `exec` section: the credential plugin to run.
struct ExecPluginConfiguration: Sendable, Hashable {
    /// The ExecCredential versions this agent speaks.
    static let apiVersions: Set<String> = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]

    struct Variable: Sendable, Hashable {
        var name: String
        var value: String
    }

    var apiVersion: String
    /// An absolute path, or a bare name looked up in `PATH`.
    var command: String
    var arguments: [String]
    /// Added to the agent's own environment for the plugin.
    var environment: [Variable]
    /// Shown when the plugin cannot be found.
    var installHint: String?
    /// Whether `KUBERNETES_EXEC_INFO` carries the cluster's server and CA.
    var providesClusterInfo: Bool
    /// The kubeconfig and field (`users[0].user.exec`), for messages.
    var kubeconfig: String
    var field: String

    func error(_ subfield: String? = nil, _ message: String) -> ClusterAccessError {
        ClusterAccessError(file: kubeconfig, field: subfield.map { "\(field).\($0)" } ?? field, message)
    }
}
