import ClusterAccess
import Foundation
import NIOSSL
import Testing
import TestSupport

/// A service account directory as the kubelet writes it: `token` and
/// `ca.crt` are symlinks through `..data`, which points at a timestamped
/// directory and is swapped atomically on rotation.
struct ServiceAccountDirectory {
    let directory: TemporaryDirectory
    var path: String { directory.path }
    private var generation = 0

    init(token: String) throws {
        directory = try TemporaryDirectory("serviceaccount")
        try rotate(token: token)
        try FileManager.default.createSymbolicLink(atPath: path + "/token", withDestinationPath: "..data/token")
        try FileManager.default.createSymbolicLink(atPath: path + "/ca.crt", withDestinationPath: "..data/ca.crt")
    }

    /// Writes a new timestamped directory and swaps `..data` to it with a rename.
    mutating func rotate(token: String) throws {
        generation += 1
        let name = "..2026_01_01_00_00_0\(generation).\(generation)"
        try FileManager.default.createDirectory(atPath: path + "/" + name, withIntermediateDirectories: false)
        try token.write(toFile: path + "/\(name)/token", atomically: false, encoding: .utf8)
        try FileManager.default.copyItem(atPath: TestPKI.shared.caCertificate, toPath: path + "/\(name)/ca.crt")
        try FileManager.default.createSymbolicLink(atPath: path + "/..data_tmp", withDestinationPath: name)
        guard rename(path + "/..data_tmp", path + "/..data") == 0 else { throw POSIXError(.EIO) }
    }

    func settings(host: String = "10.96.0.1", port: String? = "443") -> ClusterAccessSettings {
        var settings = ClusterAccessSettings()
        settings.serviceAccountDirectory = path
        settings.environment = ["KUBERNETES_SERVICE_HOST": host]
        settings.environment["KUBERNETES_SERVICE_PORT"] = port
        return settings
    }
}

@Suite("in-cluster and rotation")
struct InClusterAndRotationTests {
    @Test("in-cluster: server from the environment, CA and token from the service account; the token rotates by ..data swap")
    func inCluster() async throws {
        var account = try ServiceAccountDirectory(token: "token-one")
        defer { account.directory.remove() }
        let credentials = try ClusterCredentials.load(account.settings(), logger: testLogger)
        #expect(credentials.server == "https://10.96.0.1:443")
        #expect(credentials.origin == "in-cluster service account")
        #expect(try await credentials.authorization() == "Bearer token-one")
        #expect(try await credentials.tlsConfiguration().trustRoots == .certificates(try NIOSSLCertificate.fromPEMFile(TestPKI.shared.caCertificate)))

        try account.rotate(token: "token-two")
        #expect(try await credentials.authorization() == "Bearer token-two")

        #expect(try ClusterCredentials.load(account.settings(host: "fd00::1"), logger: testLogger).server == "https://[fd00::1]:443")
    }

    @Test("in-cluster problems name the variable or the service account file")
    func inClusterErrors() throws {
        let account = try ServiceAccountDirectory(token: "t")
        defer { account.directory.remove() }
        var settings = account.settings()
        settings.environment = [:]
        #expect(loadError(settings) == "environment: KUBERNETES_SERVICE_HOST: not set: no kubeconfig was given (podSource.kubeconfig) and the agent does not run in a pod")
        #expect(loadError(account.settings(port: "https")) == "environment: KUBERNETES_SERVICE_PORT: \"https\" is not a port (KUBERNETES_SERVICE_HOST is set)")
        try FileManager.default.removeItem(atPath: account.path + "/token")
        #expect(loadError(account.settings()) == "\(account.path): token: cannot read \(account.path)/token: No such file or directory")
    }

    @Test("a rewritten tokenFile gives the new header from the same object")
    func tokenFileRotation() async throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try "first\n".write(toFile: dir.path + "/token", atomically: false, encoding: .utf8)
        try dir.write(kubeconfig(cluster: "", user: "tokenFile: token"))
        let credentials = try ClusterCredentials.load(dir.settings(), logger: testLogger)
        #expect(try await credentials.authorization() == "Bearer first")
        // Same size, written in place: the change time still tells.
        try "secnd\n".write(toFile: dir.path + "/token", atomically: false, encoding: .utf8)
        #expect(try await credentials.authorization() == "Bearer secnd")
        try "third-and-longer".write(toFile: dir.path + "/token", atomically: true, encoding: .utf8)
        #expect(try await credentials.authorization() == "Bearer third-and-longer")
    }

    @Test("kubelet-client-current.pem swapped to a new certificate: the next TLS configuration carries it")
    func clientCertificateRotation() async throws {
        let pki = TestPKI.shared
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        let current = dir.path + "/kubelet-client-current.pem"
        try FileManager.default.createSymbolicLink(atPath: current, withDestinationPath: pki.clientBundle("client-a"))
        try dir.write(kubeconfig(
            cluster: "certificate-authority: \(pki.caCertificate)",
            user: "client-certificate: \(current)\nclient-key: \(current)"
        ))
        let credentials = try ClusterCredentials.load(dir.settings(), logger: testLogger)
        let first = try await credentials.tlsConfiguration()
        #expect(first.certificateChain == [.certificate(try firstCertificate(pki.clientCertificate("client-a")))])
        // Unchanged files: the very same configuration, so pooled connections stay usable.
        #expect(try await credentials.tlsConfiguration().bestEffortEquals(first))

        // The kubelet's rotation: a new file, the symlink replaced by rename.
        try FileManager.default.createSymbolicLink(atPath: current + ".tmp", withDestinationPath: pki.clientBundle("client-b"))
        #expect(rename(current + ".tmp", current) == 0)
        let second = try await credentials.tlsConfiguration()
        #expect(second.certificateChain == [.certificate(try firstCertificate(pki.clientCertificate("client-b")))])
        #expect(!second.bestEffortEquals(first))
    }
}

@Suite("node name")
struct NodeNameTests {
    @Test("podSource.nodeName, then NODE_NAME, then the kubeconfig user system:node:<name>, then the hostname")
    func order() {
        let environment = ["NODE_NAME": "from-env"]
        let user = "system:node:from-kubeconfig"
        let hostname: () -> String? = { "From-Hostname" }
        #expect(NodeName.resolve(configured: "configured", environment: environment, kubeconfigUserName: user, hostname: hostname)! == ("configured", "podSource.nodeName"))
        #expect(NodeName.resolve(configured: " ", environment: environment, kubeconfigUserName: user, hostname: hostname)! == ("from-env", "NODE_NAME"))
        #expect(NodeName.resolve(configured: nil, environment: [:], kubeconfigUserName: user, hostname: hostname)! == ("from-kubeconfig", "kubeconfig user system:node:from-kubeconfig"))
        #expect(NodeName.resolve(configured: nil, environment: [:], kubeconfigUserName: "default-auth", hostname: hostname)! == ("from-hostname", "hostname"))
        #expect(NodeName.resolve(configured: nil, environment: ["NODE_NAME": ""], kubeconfigUserName: nil, hostname: { nil }) == nil)
    }
}
