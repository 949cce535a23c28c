import Foundation

/// Where the agent's cluster credentials come from: a kubeconfig file, or
/// (without one) the in-cluster service account.
public struct ClusterAccessSettings: Sendable, Hashable {
    /// The kubeconfig file; nil: in-cluster (`KUBERNETES_SERVICE_HOST`/`PORT`
    /// and `serviceAccountDirectory`), else an error.
    public var kubeconfig: String?
    /// The kubeconfig context to use; nil: its `current-context`.
    public var context: String?
    /// The explicit opt-in without which a kubeconfig that sets
    /// `insecure-skip-tls-verify: true` is refused.
    public var allowInsecureSkipTLSVerify = false
    /// The service account's `token`, `ca.crt` and `namespace`, in-cluster.
    public var serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"
    /// The environment: `KUBERNETES_SERVICE_*`, `PATH` for exec plugins, and
    /// the base of a plugin's own environment.
    public var environment: [String: String] = ProcessInfo.processInfo.environment
    /// How long an exec credential plugin may run before it is killed.
    public var execTimeout: Duration = .seconds(30)

    /// Settings for `kubeconfig` (nil: in-cluster) and `context` (nil: the current one).
    public init(kubeconfig: String? = nil, context: String? = nil) {
        self.kubeconfig = kubeconfig
        self.context = context
    }
}
