import BoundedYAML
import Foundation
import ReaperCore
import SystemCalls
import Yams

/// Reads a kubeconfig the way kubectl does, for one context: the chosen
/// context's cluster and user, relative paths against the kubeconfig's
/// directory, `*-data` decoded, and kubectl's refusals (both a file and its
/// `-data`, a certificate without its key) kept.
struct KubeconfigLoader {
    /// Kubeconfigs are small; a larger file is not one.
    static let sizeLimit = 4 << 20

    let path: String
    let settings: ClusterAccessSettings
    var fields: KubeconfigFields { KubeconfigFields(file: path) }

    /// The kubeconfig's directory, which relative paths in it are relative to.
    var directory: String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (absolute as NSString).deletingLastPathComponent
    }

    func load() throws(ClusterAccessError) -> AccessProfile {
        let root = try document()
        let top = try fields.mapping(root, field: "(top level)", section: "")

        let contextName: String
        if let chosen = settings.context {
            contextName = chosen
        } else if let current = try fields.string(top["current-context"], field: "current-context") {
            contextName = current
        } else {
            throw fields.error("current-context", "not set, and no context was chosen (podSource.context)")
        }

        let (contextIndex, context) = try named("contexts", contextName, in: top, entryKey: "context")
        let contextField = "contexts[\(contextIndex)].context"
        guard let clusterName = try fields.string(context["cluster"], field: "\(contextField).cluster") else {
            throw fields.error("\(contextField).cluster", "the context \"\(UserText.excerpt(contextName))\" names no cluster")
        }
        let (clusterIndex, cluster) = try named("clusters", clusterName, in: top, entryKey: "cluster")
        var profile = try readCluster(cluster, field: "clusters[\(clusterIndex)].cluster")
        profile.origin = "kubeconfig \(path) (context \(contextName))"

        if let userName = try fields.string(context["user"], field: "\(contextField).user") {
            let (userIndex, user) = try named("users", userName, in: top, entryKey: "user")
            profile.userName = userName
            try readUser(user, field: "users[\(userIndex)].user", into: &profile)
        }
        return profile
    }

    // MARK: Document

    func document() throws(ClusterAccessError) -> Node {
        let bytes: [UInt8]
        do {
            bytes = try RegularFileReader.read(path, limit: Self.sizeLimit, followSymlinks: true)
        } catch {
            throw ClusterAccessError(file: path, field: nil, "cannot read the kubeconfig: \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ClusterAccessError(file: path, field: nil, "not UTF-8 text")
        }
        let documents: [Node]
        do {
            documents = try BoundedYAML.documents(text, limits: .settings)
        } catch {
            throw ClusterAccessError(file: path, field: nil, "\(error)")
        }
        let real = documents.filter { !KubeconfigFields.isNull($0) }
        guard real.count == 1, let root = real.first else {
            throw ClusterAccessError(file: path, field: nil, real.isEmpty ? "empty" : "more than one YAML document; a kubeconfig holds one")
        }
        return root
    }

    /// The entry `name` of the list `list` (`contexts`, `clusters`, `users`),
    /// each `{name: ..., <entryKey>: {...}}`, and its index.
    func named(_ list: String, _ name: String, in top: KubeconfigMapping, entryKey: String) throws(ClusterAccessError) -> (Int, KubeconfigMapping) {
        var names: [String] = []
        for (index, item) in try fields.sequence(top[list], field: list).enumerated() {
            let entry = try fields.mapping(item, field: "\(list)[\(index)]", section: "\(list)[]")
            let itemName = try fields.string(entry["name"], field: "\(list)[\(index)].name") ?? ""
            if itemName == name {
                return (index, try fields.mapping(entry[entryKey], field: "\(list)[\(index)].\(entryKey)", section: entryKey))
            }
            names.append(itemName)
        }
        let known = names.isEmpty ? "the list is empty" : "it has " + names.prefix(10).map { "\"\(UserText.excerpt($0))\"" }.joined(separator: ", ")
        throw fields.error(list, "no entry named \"\(UserText.excerpt(name))\" (\(known))")
    }

    // MARK: Cluster

    func readCluster(_ cluster: KubeconfigMapping, field: String) throws(ClusterAccessError) -> AccessProfile {
        guard let serverText = try fields.string(cluster["server"], field: "\(field).server") else {
            throw fields.error("\(field).server", "missing: the API server's URL, e.g. https://10.0.0.1:6443")
        }
        let server = try ServerURL.normalize(serverText, file: path, field: "\(field).server")
        var profile = AccessProfile(server: server, origin: "")
        profile.authority = try material(
            file: cluster["certificate-authority"], data: cluster["certificate-authority-data"],
            field: "\(field).certificate-authority"
        )
        if try fields.bool(cluster["insecure-skip-tls-verify"], field: "\(field).insecure-skip-tls-verify") {
            guard settings.allowInsecureSkipTLSVerify else {
                throw fields.error(
                    "\(field).insecure-skip-tls-verify",
                    "true: the server's certificate would not be verified; refused unless podSource.allowInsecureSkipTLSVerify is set"
                )
            }
            if let authority = profile.authority {
                throw fields.error(authority.field, "a CA together with insecure-skip-tls-verify: true; kubectl refuses this too, keep one")
            }
            profile.skipsVerification = true
        }
        if let name = try fields.string(cluster["tls-server-name"], field: "\(field).tls-server-name") {
            throw fields.error(
                "\(field).tls-server-name",
                "\"\(UserText.excerpt(name))\": verifying the server under another name is not supported; use a server URL its certificate names"
            )
        }
        return profile
    }

    // MARK: User

    func readUser(_ user: KubeconfigMapping, field: String, into profile: inout AccessProfile) throws(ClusterAccessError) {
        profile.clientCertificate = try material(file: user["client-certificate"], data: user["client-certificate-data"], field: "\(field).client-certificate")
        profile.clientKey = try material(file: user["client-key"], data: user["client-key-data"], field: "\(field).client-key")
        if (profile.clientCertificate == nil) != (profile.clientKey == nil) {
            let missing = profile.clientKey == nil ? "client-key" : "client-certificate"
            throw fields.error("\(field).\(missing)", "missing: client-certificate and client-key go together")
        }
        if let token = try fields.string(user["token"], field: "\(field).token") {
            profile.token = .fixed(try Secret.bearerToken(token) { fields.error("\(field).token", $0) })
        } else if let tokenFile = try fields.string(user["tokenFile"], field: "\(field).tokenFile") {
            profile.token = .file(CredentialMaterial(content: .file(absolute(tokenFile)), origin: path, field: "\(field).tokenFile"))
        }
        if user["auth-provider"].map({ !KubeconfigFields.isNull($0) }) == true {
            throw fields.error("\(field).auth-provider", "auth-provider plugins are not supported (kubectl dropped them too); use an exec plugin")
        }
        if let exec = user["exec"], !KubeconfigFields.isNull(exec) {
            if profile.token != .none {
                throw fields.error("\(field).exec", "set together with a token; choose one way to authenticate")
            }
            profile.exec = try readExec(exec, field: "\(field).exec")
            profile.token = .exec
        }
    }

    func readExec(_ node: Node, field: String) throws(ClusterAccessError) -> ExecPluginConfiguration {
        let exec = try fields.mapping(node, field: field, section: "exec")
        guard let apiVersion = try fields.string(exec["apiVersion"], field: "\(field).apiVersion") else {
            throw fields.error("\(field).apiVersion", "missing: client.authentication.k8s.io/v1 or v1beta1")
        }
        guard ExecPluginConfiguration.apiVersions.contains(apiVersion) else {
            throw fields.error("\(field).apiVersion", "\"\(UserText.excerpt(apiVersion))\" is not supported; use client.authentication.k8s.io/v1 or v1beta1")
        }
        guard let command = try fields.string(exec["command"], field: "\(field).command") else {
            throw fields.error("\(field).command", "missing: the plugin to run")
        }
        var environment: [(String, String)] = []
        for (index, item) in try fields.sequence(exec["env"], field: "\(field).env").enumerated() {
            let entry = try fields.mapping(item, field: "\(field).env[\(index)]", section: "env[]")
            guard let name = try fields.string(entry["name"], field: "\(field).env[\(index)].name") else {
                throw fields.error("\(field).env[\(index)].name", "missing")
            }
            environment.append((name, try fields.string(entry["value"], field: "\(field).env[\(index)].value") ?? ""))
        }
        let interactiveMode = try fields.string(exec["interactiveMode"], field: "\(field).interactiveMode") ?? "IfAvailable"
        switch interactiveMode {
        case "Never", "IfAvailable": break
        case "Always":
            throw fields.error("\(field).interactiveMode", "Always: the plugin needs a terminal, and an agent has none")
        default:
            throw fields.error("\(field).interactiveMode", "\"\(UserText.excerpt(interactiveMode))\" is not one of Never, IfAvailable, Always")
        }
        // A command with a slash is a path (relative to the kubeconfig, as in
        // kubectl); a bare name is looked up in PATH when it runs.
        let resolved = command.contains("/") ? absolute(command) : command
        return ExecPluginConfiguration(
            apiVersion: apiVersion, command: resolved,
            arguments: try fields.strings(exec["args"], field: "\(field).args"),
            environment: environment.map { ExecPluginConfiguration.Variable(name: $0.0, value: $0.1) },
            installHint: try fields.string(exec["installHint"], field: "\(field).installHint"),
            providesClusterInfo: try fields.bool(exec["provideClusterInfo"], field: "\(field).provideClusterInfo"),
            kubeconfig: path, field: field
        )
    }

    // MARK: Paths and data

    /// `file` or `data` (never both, as kubectl says), as material named by `field`.
    func material(file: Node?, data: Node?, field: String) throws(ClusterAccessError) -> CredentialMaterial? {
        let filePath = try fields.string(file, field: field)
        let encoded = try fields.string(data, field: "\(field)-data")
        switch (filePath, encoded) {
        case (nil, nil):
            return nil
        case (.some, .some):
            throw fields.error("\(field)-data", "set together with \(field.split(separator: ".").last ?? ""); kubectl refuses this too, keep one")
        case let (.some(filePath), nil):
            return CredentialMaterial(content: .file(absolute(filePath)), origin: path, field: field)
        case let (nil, .some(encoded)):
            guard let bytes = Base64Text.decode(encoded) else {
                throw fields.error("\(field)-data", "not valid base64")
            }
            return CredentialMaterial(content: .inline(bytes), origin: path, field: "\(field)-data")
        }
    }

    /// A path from the kubeconfig, made absolute against its directory and
    /// cleaned of `.` and `..` without touching the disk, as Go's filepath.Join does.
    func absolute(_ file: String) -> String {
        Self.clean(file.hasPrefix("/") ? file : directory + "/" + file)
    }

    static func clean(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}

/// Base64 as kubeconfigs hold it: standard alphabet, padded; line breaks
/// (which Go's decoder skips) allowed, nothing else.
enum Base64Text {
    static func decode(_ text: String) -> [UInt8]? {
        let compact = text.filter { $0 != "\n" && $0 != "\r" }
        guard !compact.isEmpty, let data = Data(base64Encoded: compact) else { return nil }
        return Array(data)
    }
}
