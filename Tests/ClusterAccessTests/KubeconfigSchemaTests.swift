import ClusterAccess
import Testing
import TestSupport

/// A kubeconfig is kubectl's file: fields we do not read pass, but a near
/// miss of a kubectl field is refused, named under its field path.
@Suite("kubeconfig schema")
struct KubeconfigSchemaTests {
    @Test("a near miss of a kubeconfig field: did you mean, naming the field path", arguments: [
        (nil, "certificate-authorty: /ca.crt", "", "clusters[0].cluster.certificate-authorty: unknown key in clusters[0].cluster; did you mean clusters[0].cluster.certificate-authority?"),
        (nil, "", "tokn: abc", "users[0].user.tokn: unknown key in users[0].user; did you mean users[0].user.token?"),
        ("curent-context: test-context", "", "token: abc", "curent-context: unknown key; did you mean current-context?"),
    ])
    func nearMiss(_ top: String?, _ cluster: String, _ user: String, _ expected: String) throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write(kubeconfig(cluster: cluster, user: user) + (top.map { "\n" + $0 + "\n" } ?? ""))
        let message = loadError(dir.settings())
        #expect(message == "\(dir.kubeconfig): \(expected)", "\(message ?? "loaded")")
    }
}
