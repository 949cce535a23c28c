import BoundedYAML
import Yams

/// The fields of a kubeconfig, as kubectl's `clientcmd/api/v1` defines them.
/// The agent reads only some; the rest are listed so that their near misses
/// are not mistaken for typos, and a typo of any is named (`did you mean`).
enum KubeconfigSchema {
    static let schema = YAMLSchema([
        section("", ["apiVersion", "kind", "preferences", "clusters", "contexts", "users", "current-context", "extensions"]),
        section("clusters[]", ["name", "cluster"]),
        section("contexts[]", ["name", "context"]),
        section("users[]", ["name", "user"]),
        section("cluster", [
            "server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify", "tls-server-name",
            "proxy-url", "disable-compression", "extensions",
        ]),
        section("context", ["cluster", "user", "namespace", "extensions"]),
        section("user", [
            "client-certificate", "client-certificate-data", "client-key", "client-key-data", "token", "tokenFile",
            "as", "as-uid", "as-groups", "as-user-extra", "username", "password", "auth-provider", "exec", "extensions",
        ]),
        section("exec", ["apiVersion", "command", "args", "env", "installHint", "provideClusterInfo", "interactiveMode"]),
        section("env[]", ["name", "value"]),
    ])

    static func section(_ path: String, _ keys: [String]) -> YAMLSection {
        YAMLSection(path, unknownKeys: .nearMissesRefused, keys: keys.map { YAMLKey($0) })
    }
}

/// A kubeconfig mapping's values by key. Looking up a key its section's
/// table lacks is a programming error: every field the loader reads is in
/// `KubeconfigSchema`, so its near misses are caught.
struct KubeconfigMapping {
    let section: YAMLSection
    var values: [String: Node] = [:]

    subscript(key: String) -> Node? {
        assert(section.contains(key), "\(key) is read but not in KubeconfigSchema's \(section.path)")
        return values[key]
    }
}
