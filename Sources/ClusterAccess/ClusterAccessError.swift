import ReaperCore

/// A credential problem, as one line naming the file and the field at fault:
/// `/etc/kubernetes/kubelet.conf: users[0].user.client-key: cannot read /x.pem: No such file or directory`.
public struct ClusterAccessError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kubeconfig, service-account file or plugin the problem is in.
    public var file: String
    /// The field at fault (`users[0].user.client-key`, `KUBERNETES_SERVICE_HOST`), when one is.
    public var field: String?
    /// What is wrong, one line.
    public var message: String

    /// A problem with `field` of `file`; `message` is flattened to one line.
    public init(file: String, field: String?, _ message: String) {
        self.file = file
        self.field = field
        // Messages quote plugin output and file names: keep them one line.
        self.message = UserText.excerpt(message, limit: 1_000)
    }

    /// `file: field: message`.
    public var description: String {
        [file, field, message].compactMap { $0 }.joined(separator: ": ")
    }
}
