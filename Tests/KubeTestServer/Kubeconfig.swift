import Foundation

/// How a kubeconfig cluster entry says to trust the server.
public enum KubeconfigTrust: Sendable, Hashable {
    /// `certificate-authority: <path>`
    case certificateAuthorityFile(String)
    /// `certificate-authority-data: <base64 of the PEM file>`
    case certificateAuthorityData(pemFile: String)
    /// `insecure-skip-tls-verify: true`
    case insecureSkipTLSVerify
    /// Nothing: the system trust store.
    case none
}

/// An `exec` credential plugin stanza (`users[].user.exec`).
public struct KubeconfigExec: Sendable, Hashable {
    public var command: String
    public var args: [String]
    /// `env: [{name, value}]`, in order.
    public var env: [[String]]
    public var apiVersion: String
    public var interactiveMode: String?
    public var provideClusterInfo: Bool?

    public init(
        command: String, args: [String] = [], env: [(name: String, value: String)] = [],
        apiVersion: String = "client.authentication.k8s.io/v1", interactiveMode: String? = "Never",
        provideClusterInfo: Bool? = nil
    ) {
        self.command = command
        self.args = args
        self.env = env.map { [$0.name, $0.value] }
        self.apiVersion = apiVersion
        self.interactiveMode = interactiveMode
        self.provideClusterInfo = provideClusterInfo
    }
}

/// One way a kubeconfig user authenticates; a user may combine several.
public enum KubeconfigAuth: Sendable, Hashable {
    /// `client-certificate` / `client-key` file paths.
    case clientCertificateFiles(CertificateFiles)
    /// `client-certificate-data` / `client-key-data`: the files' PEM, base64.
    case clientCertificateData(CertificateFiles)
    /// `token: <value>`
    case token(String)
    /// `tokenFile: <path>`
    case tokenFile(String)
    /// `exec: {...}`
    case exec(KubeconfigExec)
}

/// A kubeconfig file (YAML, as kubectl writes it), written for tests.
public struct Kubeconfig: Sendable {
    public struct Cluster: Sendable {
        public var name: String
        public var server: String
        public var trust: KubeconfigTrust
        public init(name: String, server: String, trust: KubeconfigTrust) {
            self.name = name
            self.server = server
            self.trust = trust
        }
    }

    public struct User: Sendable {
        public var name: String
        public var auth: [KubeconfigAuth]
        public init(name: String, auth: [KubeconfigAuth]) {
            self.name = name
            self.auth = auth
        }
    }

    public struct Context: Sendable {
        public var name: String
        public var cluster: String
        public var user: String
        public var namespace: String?
        public init(name: String, cluster: String, user: String, namespace: String? = nil) {
            self.name = name
            self.cluster = cluster
            self.user = user
            self.namespace = namespace
        }
    }

    public var clusters: [Cluster]
    public var users: [User]
    public var contexts: [Context]
    /// `current-context`; nil leaves the key out.
    public var currentContext: String?

    public init(clusters: [Cluster], users: [User], contexts: [Context], currentContext: String?) {
        self.clusters = clusters
        self.users = users
        self.contexts = contexts
        self.currentContext = currentContext
    }

    /// One cluster, one user, one context (named `context`), made current: the
    /// shape kubeadm writes for `/etc/kubernetes/kubelet.conf`.
    public static func single(
        server: String, trust: KubeconfigTrust, auth: [KubeconfigAuth],
        context: String = "test-context", user: String = "test-user", cluster: String = "test-cluster"
    ) -> Kubeconfig {
        Kubeconfig(
            clusters: [Cluster(name: cluster, server: server, trust: trust)],
            users: [User(name: user, auth: auth)],
            contexts: [Context(name: context, cluster: cluster, user: user)],
            currentContext: context
        )
    }

    /// The YAML text.
    public func yaml() throws -> String {
        var lines = ["apiVersion: v1", "kind: Config", "clusters:"]
        for cluster in clusters {
            lines.append("- name: \(quoted(cluster.name))")
            lines.append("  cluster:")
            lines.append("    server: \(quoted(cluster.server))")
            switch cluster.trust {
            case .certificateAuthorityFile(let path): lines.append("    certificate-authority: \(quoted(path))")
            case .certificateAuthorityData(let pemFile): lines.append("    certificate-authority-data: \(try base64(of: pemFile))")
            case .insecureSkipTLSVerify: lines.append("    insecure-skip-tls-verify: true")
            case .none: break
            }
        }
        lines.append("users:")
        for user in users {
            lines.append("- name: \(quoted(user.name))")
            lines.append(user.auth.isEmpty ? "  user: {}" : "  user:")
            for auth in user.auth {
                switch auth {
                case .clientCertificateFiles(let files):
                    lines.append("    client-certificate: \(quoted(files.certificate))")
                    lines.append("    client-key: \(quoted(files.key))")
                case .clientCertificateData(let files):
                    lines.append("    client-certificate-data: \(try base64(of: files.certificate))")
                    lines.append("    client-key-data: \(try base64(of: files.key))")
                case .token(let token): lines.append("    token: \(quoted(token))")
                case .tokenFile(let path): lines.append("    tokenFile: \(quoted(path))")
                case .exec(let exec):
                    lines.append("    exec:")
                    lines.append("      apiVersion: \(quoted(exec.apiVersion))")
                    lines.append("      command: \(quoted(exec.command))")
                    lines.append("      args: [\(exec.args.map(quoted).joined(separator: ", "))]")
                    if exec.env.isEmpty {
                        lines.append("      env: null")
                    } else {
                        lines.append("      env:")
                        for pair in exec.env {
                            lines.append("      - name: \(quoted(pair[0]))")
                            lines.append("        value: \(quoted(pair[1]))")
                        }
                    }
                    if let mode = exec.interactiveMode { lines.append("      interactiveMode: \(quoted(mode))") }
                    if let info = exec.provideClusterInfo { lines.append("      provideClusterInfo: \(info)") }
                }
            }
        }
        lines.append("contexts:")
        for context in contexts {
            lines.append("- name: \(quoted(context.name))")
            lines.append("  context:")
            lines.append("    cluster: \(quoted(context.cluster))")
            lines.append("    user: \(quoted(context.user))")
            if let namespace = context.namespace { lines.append("    namespace: \(quoted(namespace))") }
        }
        if let currentContext { lines.append("current-context: \(quoted(currentContext))") }
        lines.append("preferences: {}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the YAML to `path` (mode 0600, as kubeconfigs are) and returns `path`.
    @discardableResult
    public func write(to path: String) throws -> String {
        try Data(try yaml().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        return path
    }

    /// A YAML double-quoted scalar (JSON string escaping is valid YAML).
    private func quoted(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }

    private func base64(of file: String) throws -> String {
        try Data(contentsOf: URL(fileURLWithPath: file)).base64EncodedString()
    }
}

extension TestPKI {
    /// A kubeconfig for `server` that trusts this PKI's CA (as a file) and
    /// authenticates with the node client certificate files, like kubeadm's
    /// kubelet.conf (user `system:node:<node>`, context `system:node:<node>@kubernetes`).
    public func kubeletKubeconfig(server: String, useData: Bool = false) -> Kubeconfig {
        let user = "system:node:\(nodeName)"
        return .single(
            server: server,
            trust: useData ? .certificateAuthorityData(pemFile: ca.certificate) : .certificateAuthorityFile(ca.certificate),
            auth: [useData ? .clientCertificateData(client) : .clientCertificateFiles(client)],
            context: "\(user)@kubernetes", user: user, cluster: "kubernetes"
        )
    }
}
