/// Bytes a credential is made of (a PEM block, a token), either written in
/// the kubeconfig or in a file that is re-read when it changes, with the
/// file and field that named it, for messages.
struct CredentialMaterial: Sendable, Hashable {
    enum Content: Sendable, Hashable {
        /// `*-data` fields, decoded; `token`.
        case inline([UInt8])
        /// An absolute path, re-read when it changes on disk.
        case file(String)
    }

    var content: Content
    /// The kubeconfig or service-account directory that named it.
    var origin: String
    /// The field that named it, e.g. `users[0].user.client-key`.
    var field: String

    func error(_ message: String) -> ClusterAccessError {
        ClusterAccessError(file: origin, field: field, message)
    }
}

/// Where the bearer token comes from.
enum TokenSource: Sendable, Hashable {
    case none
    case fixed(Secret)
    case file(CredentialMaterial)
    /// The exec plugin's `status.token`, when it gives one.
    case exec
}

/// Everything a kubeconfig context (or the in-cluster service account) says
/// about reaching the server and proving who we are, resolved: paths made
/// absolute, `*-data` decoded, one choice made where kubectl makes one.
struct AccessProfile: Sendable, Hashable {
    /// `https://host:port[/path]`, no trailing slash.
    var server: String
    /// For logs: `kubeconfig /path (context NAME)`, `in-cluster service account`.
    var origin: String
    /// The chosen context's user name.
    var userName: String?
    /// The CA the server's certificate must chain to; nil: the system's roots.
    var authority: CredentialMaterial?
    /// `insecure-skip-tls-verify`, already checked against the opt-in.
    var skipsVerification = false
    var clientCertificate: CredentialMaterial?
    var clientKey: CredentialMaterial?
    var token: TokenSource = .none
    var exec: ExecPluginConfiguration?
}
