import Foundation
import Logging
import NIOSSL
import Synchronization

/// How to reach the cluster and prove who we are, loaded once from a
/// kubeconfig or the in-cluster service account, and asked again before each
/// request: files that rotate on disk and exec credentials that expire are
/// followed without a restart.
public final class ClusterCredentials: Sendable {
    /// The server's base URL, e.g. `https://10.0.0.1:6443`, no trailing slash.
    public let server: String
    /// For logs and the plan: `kubeconfig /path (context NAME)` or `in-cluster service account`.
    public let origin: String
    /// The chosen context's `users[].name` (kubeadm's kubelet.conf: `system:node:<name>`).
    public let kubeconfigUserName: String?

    let profile: AccessProfile
    let files: WatchedFiles
    let exec: ExecCredentialProvider?
    let logger: Logger
    private let tlsCache = Mutex<(material: TLSMaterial, configuration: TLSConfiguration)?>(nil)

    init(profile: AccessProfile, files: WatchedFiles, exec: ExecCredentialProvider?, logger: Logger) {
        self.profile = profile
        self.server = profile.server
        self.origin = profile.origin
        self.kubeconfigUserName = profile.userName
        self.files = files
        self.exec = exec
        self.logger = logger
    }

    /// Loads the kubeconfig `settings` name (its current or chosen context),
    /// or the in-cluster service account when it names none. Every file it
    /// refers to is read and checked now, so a broken setup is one line at
    /// startup; an exec plugin runs at the first request.
    public static func load(_ settings: ClusterAccessSettings, logger: Logger) throws(ClusterAccessError) -> ClusterCredentials {
        let profile: AccessProfile
        if let path = settings.kubeconfig {
            profile = try KubeconfigLoader(path: path, settings: settings).load()
        } else {
            profile = try InClusterLoader(settings: settings).load()
        }
        let exec = profile.exec.map {
            ExecCredentialProvider(
                $0, clusterInfo: try? clusterInfo(profile), environment: settings.environment,
                timeout: settings.execTimeout, logger: logger
            )
        }
        let credentials = ClusterCredentials(profile: profile, files: WatchedFiles(), exec: exec, logger: logger)
        try credentials.check()
        logger.info("cluster credentials loaded", metadata: [
            "server": "\(credentials.server)", "origin": "\(credentials.origin)",
            "user": "\(credentials.kubeconfigUserName ?? "")", "authentication": "\(credentials.authenticationKind)",
        ])
        return credentials
    }

    /// Reads and parses every file now (an exec plugin's part waits for the first request).
    func check() throws(ClusterAccessError) {
        _ = try buildTLSConfiguration(execCredential: nil)
        if case .file(let material) = profile.token { _ = try token(from: material) }
    }

    /// How we authenticate, for the log line (never the secret itself).
    var authenticationKind: String {
        var kinds: [String] = []
        if profile.clientCertificate != nil { kinds.append("client certificate") }
        switch profile.token {
        case .none: break
        case .fixed: kinds.append("token")
        case .file: kinds.append("token file")
        case .exec: kinds.append("exec plugin \(profile.exec?.command ?? "")")
        }
        return kinds.isEmpty ? "none" : kinds.joined(separator: ", ")
    }

    // MARK: Per request

    /// The TLS configuration for the next request: the CA (the kubeconfig's
    /// file or `-data`, in-cluster `ca.crt`; else the system's roots), and the
    /// client certificate and key (file or `-data`, or an exec plugin's),
    /// re-read when the files changed on disk (device, inode, size, mtime,
    /// ctime), so kubelet-client-current.pem rotation needs no restart. The
    /// server is fully verified, its name included, unless the kubeconfig
    /// sets `insecure-skip-tls-verify` and the settings allowed it. The same
    /// value is returned while nothing changed, so pooled connections are reused.
    public func tlsConfiguration() async throws(ClusterAccessError) -> TLSConfiguration {
        var execCredential: ExecCredential?
        if let exec { execCredential = try await exec.credential() }
        let credential = execCredential
        return try await files.offPool { [self] () throws(ClusterAccessError) in try buildTLSConfiguration(execCredential: credential) }
    }

    /// The `Authorization` header value for the next request, or nil (the
    /// one place a token is revealed: every token is held as a `Secret`): the
    /// kubeconfig's `token`, its `tokenFile` (re-read when it changed on
    /// disk; the in-cluster token likewise), or an exec plugin's token
    /// (cached until its `expirationTimestamp`, less a small margin, then run again).
    public func authorization() async throws(ClusterAccessError) -> String? {
        switch profile.token {
        case .none:
            return nil
        case .fixed(let token):
            return "Bearer \(token.revealed)"
        case .file(let material):
            let token: Secret = try await files.offPool { [self] () throws(ClusterAccessError) -> Secret in try self.token(from: material) }
            return "Bearer \(token.revealed)"
        case .exec:
            guard let exec else { return nil }
            return try await exec.credential().token.map { "Bearer \($0.revealed)" }
        }
    }

    /// After a 401: forgets the exec plugin's credential and every file read,
    /// so the next call runs the plugin and reads the files again.
    public func invalidate() {
        exec?.invalidate()
        files.forget()
        tlsCache.withLock { $0 = nil }
    }

    /// The same client identity (client certificate, token, exec plugin)
    /// against another server, e.g. the kubelet at `https://<host>:10250`.
    /// `certificateAuthorityFile` is the CA that server's certificate must
    /// chain to; nil keeps the cluster's CA (and its verification choice).
    /// `field` names the setting the URL came from, for messages.
    public func retargeted(server: String, field: String = "podSource.server", certificateAuthorityFile: String?) throws(ClusterAccessError) -> ClusterCredentials {
        var profile = profile
        profile.server = try ServerURL.normalize(server, file: field, field: nil)
        profile.origin = "\(self.origin), retargeted to \(profile.server)"
        if let certificateAuthorityFile {
            profile.authority = CredentialMaterial(content: .file(certificateAuthorityFile), origin: "podSource", field: "certificateAuthority")
            profile.skipsVerification = false
        }
        let credentials = ClusterCredentials(profile: profile, files: files, exec: exec, logger: logger)
        try credentials.check()
        return credentials
    }

    // MARK: Building

    /// The token a file holds, the whitespace around it dropped (as
    /// client-go does); refused when it is not one token of visible ASCII.
    func token(from material: CredentialMaterial) throws(ClusterAccessError) -> Secret {
        let bytes = try files.read(material)
        let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw TLSMaterial.Origin(material).error("empty: no token in it") }
        if token.contains(where: \.isNewline) {
            throw TLSMaterial.Origin(material).error("holds more than one line; a token file holds the token alone (the token is not shown)")
        }
        return try Secret.bearerToken(token) { TLSMaterial.Origin(material).error($0) }
    }

    func buildTLSConfiguration(execCredential: ExecCredential?) throws(ClusterAccessError) -> TLSConfiguration {
        var material = TLSMaterial(skipsVerification: profile.skipsVerification)
        var sources = TLSMaterial.Sources()
        if let authority = profile.authority {
            material.authority = try files.read(authority)
            sources.authority = TLSMaterial.Origin(authority)
        }
        if let certificate = profile.clientCertificate, let key = profile.clientKey {
            material.certificate = try files.read(certificate)
            material.key = try files.read(key)
            sources.certificate = TLSMaterial.Origin(certificate)
            sources.key = TLSMaterial.Origin(key)
        } else if let execCredential, let certificate = execCredential.clientCertificate, let key = execCredential.clientKey,
                  let exec = profile.exec {
            material.certificate = certificate
            material.key = key
            sources.certificate = TLSMaterial.Origin(file: exec.kubeconfig, field: exec.field + " (status.clientCertificateData)")
            sources.key = TLSMaterial.Origin(file: exec.kubeconfig, field: exec.field + " (status.clientKeyData)")
        }
        if let cached = tlsCache.withLock({ $0 }), cached.material == material { return cached.configuration }
        let configuration = try material.configuration(sources: sources)
        let replaced = tlsCache.withLock { cache in
            defer { cache = (material, configuration) }
            return cache != nil
        }
        if replaced {
            logger.info("TLS credentials changed on disk; new connections use them", metadata: ["server": "\(server)"])
        }
        return configuration
    }

    /// `spec.cluster` of `KUBERNETES_EXEC_INFO` for `provideClusterInfo`.
    static func clusterInfo(_ profile: AccessProfile) throws -> [String: any Sendable] {
        var cluster: [String: any Sendable] = ["server": profile.server, "insecure-skip-tls-verify": profile.skipsVerification]
        if let authority = profile.authority {
            cluster["certificate-authority-data"] = Data(try WatchedFiles().read(authority)).base64EncodedString()
        }
        return cluster
    }
}
