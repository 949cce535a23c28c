import ClusterAccess
import Foundation
import NIOSSL
import Testing
import TestSupport

@Suite("kubeconfig")
struct KubeconfigTests {
    let pki = TestPKI.shared

    @Test("file paths: the CA, client certificate and key are read from the files named")
    func filePaths() async throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write(kubeconfig(
            server: "https://127.0.0.1:6443/",
            cluster: "certificate-authority: \(pki.caCertificate)",
            user: "client-certificate: \(pki.clientCertificate("client-a"))\nclient-key: \(pki.clientKey("client-a"))"
        ))
        let credentials = try ClusterCredentials.load(dir.settings(), logger: testLogger)
        #expect(credentials.server == "https://127.0.0.1:6443")
        #expect(credentials.origin == "kubeconfig \(dir.kubeconfig) (context test-context)")
        #expect(credentials.kubeconfigUserName == "test-user")
        let tls = try await credentials.tlsConfiguration()
        #expect(tls.certificateVerification == .fullVerification)
        #expect(tls.trustRoots == .certificates(try NIOSSLCertificate.fromPEMFile(pki.caCertificate)))
        #expect(tls.certificateChain == [.certificate(try firstCertificate(pki.clientCertificate("client-a")))])
        #expect(try await credentials.authorization() == nil)
    }

    @Test("-data fields: base64 in the kubeconfig gives the same certificates")
    func inlineData() async throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write(kubeconfig(
            cluster: "certificate-authority-data: \(try pki.base64(pki.caCertificate))",
            user: "client-certificate-data: \(try pki.base64(pki.clientCertificate("client-b")))\nclient-key-data: \(try pki.base64(pki.clientKey("client-b")))"
        ))
        let tls = try await ClusterCredentials.load(dir.settings(), logger: testLogger).tlsConfiguration()
        #expect(tls.trustRoots == .certificates(try NIOSSLCertificate.fromPEMFile(pki.caCertificate)))
        #expect(tls.certificateChain == [.certificate(try firstCertificate(pki.clientCertificate("client-b")))])
    }

    @Test("relative paths resolve against the kubeconfig's directory, not the working directory")
    func relativePaths() async throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path + "/pki", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: pki.caCertificate, toPath: dir.path + "/pki/ca.crt")
        try FileManager.default.copyItem(atPath: pki.clientBundle("client-a"), toPath: dir.path + "/pki/client.pem")
        try "relative-token\n".write(toFile: dir.path + "/pki/token", atomically: false, encoding: .utf8)
        try dir.write(kubeconfig(
            cluster: "certificate-authority: pki/ca.crt",
            user: "client-certificate: pki/client.pem\nclient-key: ./pki/client.pem\ntokenFile: pki/token"
        ))
        #expect(FileManager.default.currentDirectoryPath != dir.path)
        let credentials = try ClusterCredentials.load(dir.settings(), logger: testLogger)
        let tls = try await credentials.tlsConfiguration()
        #expect(tls.certificateChain == [.certificate(try firstCertificate(pki.clientCertificate("client-a")))])
        #expect(try await credentials.authorization() == "Bearer relative-token")
    }

    @Test("the named context wins over current-context; without a name, current-context is used")
    func contexts() throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write("""
        apiVersion: v1
        kind: Config
        clusters:
        - name: one
          cluster: {server: "https://10.0.0.1:6443"}
        - name: two
          cluster: {server: "https://[fd00::2]:6443"}
        contexts:
        - name: first
          context: {cluster: one, user: system:node:worker-1}
        - name: second
          context: {cluster: two, user: other}
        current-context: first
        users:
        - name: system:node:worker-1
          user: {token: abc}
        - name: other
          user: {token: 12345}
        """)
        let current = try ClusterCredentials.load(dir.settings(), logger: testLogger)
        #expect(current.server == "https://10.0.0.1:6443")
        #expect(current.kubeconfigUserName == "system:node:worker-1")
        let named = try ClusterCredentials.load(dir.settings(context: "second"), logger: testLogger)
        #expect(named.server == "https://[fd00::2]:6443")
        #expect(named.origin.hasSuffix("(context second)"))
        #expect(named.kubeconfigUserName == "other")
    }

    @Test("a missing context, cluster or user is one line naming the file and the field")
    func missingEntries() throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        let base = """
        apiVersion: v1
        clusters:
        - name: one
          cluster: {server: "https://10.0.0.1:6443"}
        contexts:
        - name: first
          context: {cluster: CLUSTER, user: USER}
        users:
        - name: u
          user: {token: abc}
        """
        try dir.write(base.replacingOccurrences(of: "CLUSTER", with: "one").replacingOccurrences(of: "USER", with: "u"))
        #expect(loadError(dir.settings()) == "\(dir.kubeconfig): current-context: not set, and no context was chosen (podSource.context)")
        #expect(loadError(dir.settings(context: "nope")) == "\(dir.kubeconfig): contexts: no entry named \"nope\" (it has \"first\")")

        try dir.write(base.replacingOccurrences(of: "CLUSTER", with: "gone").replacingOccurrences(of: "USER", with: "u"))
        #expect(loadError(dir.settings(context: "first")) == "\(dir.kubeconfig): clusters: no entry named \"gone\" (it has \"one\")")

        try dir.write(base.replacingOccurrences(of: "CLUSTER", with: "one").replacingOccurrences(of: "USER", with: "ghost"))
        #expect(loadError(dir.settings(context: "first")) == "\(dir.kubeconfig): users: no entry named \"ghost\" (it has \"u\")")

        try dir.write(kubeconfig(server: "", cluster: "", user: "token: x"))
        #expect(loadError(dir.settings())?.hasPrefix("\(dir.kubeconfig): clusters[0].cluster.server: missing") == true)
    }

    @Test("bad base64, an unreadable file, a wrong type: each one line with the file and the field")
    func fieldErrors() throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        let file = dir.kubeconfig

        try dir.write(kubeconfig(cluster: "", user: "client-certificate-data: '%%%not base64'\nclient-key-data: AAAA"))
        #expect(loadError(dir.settings()) == "\(file): users[0].user.client-certificate-data: not valid base64")

        try dir.write(kubeconfig(cluster: "", user: "client-certificate: /nonexistent/x.pem\nclient-key: /nonexistent/x.pem"))
        #expect(loadError(dir.settings()) == "\(file): users[0].user.client-certificate: cannot read /nonexistent/x.pem: No such file or directory")

        try dir.write(kubeconfig(cluster: "certificate-authority: \(pki.serverKey)", user: ""))
        let notCertificate = loadError(dir.settings())
        #expect(notCertificate?.hasPrefix("\(file): clusters[0].cluster.certificate-authority: \(pki.serverKey): ") == true, "\(notCertificate ?? "")")
        #expect(notCertificate?.contains("PEM certificate") == true)

        try dir.write(kubeconfig(cluster: "insecure-skip-tls-verify: 'yes please'", user: ""))
        #expect(loadError(dir.settings()) == "\(file): clusters[0].cluster.insecure-skip-tls-verify: expected true or false, found text \"yes please\"")

        try dir.write(kubeconfig(cluster: "", user: "exec: [a, b]"))
        #expect(loadError(dir.settings()) == "\(file): users[0].user.exec: expected a mapping, found a list")

        try dir.write(kubeconfig(cluster: "", user: "client-certificate: \(pki.clientCertificate("client-a"))"))
        #expect(loadError(dir.settings()) == "\(file): users[0].user.client-key: missing: client-certificate and client-key go together")

        try dir.write(kubeconfig(cluster: "", user: "client-certificate: \(pki.clientCertificate("client-a"))\nclient-key: \(pki.clientKey("client-b"))"))
        #expect(loadError(dir.settings())?.hasPrefix("\(file): users[0].user.client-key: \(pki.clientKey("client-b")): does not match the client certificate") == true)

        try dir.write(kubeconfig(
            cluster: "certificate-authority: \(pki.caCertificate)\ncertificate-authority-data: \(try pki.base64(pki.caCertificate))", user: ""
        ))
        #expect(loadError(dir.settings())?.hasPrefix("\(file): clusters[0].cluster.certificate-authority-data: set together with certificate-authority") == true)

        try dir.write(kubeconfig(server: "http://10.0.0.1:8080", cluster: "", user: ""))
        #expect(loadError(dir.settings())?.hasPrefix("\(file): clusters[0].cluster.server: \"http://10.0.0.1:8080\": only https") == true)

        try dir.write("users: {a: b}\ncontexts: [")
        #expect(loadError(dir.settings())?.hasPrefix("\(file): line ") == true)

        var missing = dir.settings()
        missing.kubeconfig = dir.path + "/absent"
        #expect(loadError(missing) == "\(dir.path)/absent: cannot read the kubeconfig: No such file or directory")
    }

    @Test("fields this agent does not use are ignored, as kubectl ignores them")
    func unknownFieldsIgnored() throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write(kubeconfig(
            cluster: "proxy-url: http://proxy:3128\nextensions: [{name: x, extension: {a: 1}}]\nfuture-field: {deep: [1, 2]}",
            user: "token: abc\nusername: ignored\nextensions: []"
        ) + "\nextensions: []\nsomething-new: 1\n")
        #expect(loadError(dir.settings()) == nil)
    }

    @Test("insecure-skip-tls-verify is refused without the opt-in and skips verification with it")
    func insecure() async throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write(kubeconfig(cluster: "insecure-skip-tls-verify: true", user: "token: abc"))
        #expect(loadError(dir.settings()) == "\(dir.kubeconfig): clusters[0].cluster.insecure-skip-tls-verify: true: the server's certificate would not be verified; refused unless podSource.allowInsecureSkipTLSVerify is set")

        var allowed = dir.settings()
        allowed.allowInsecureSkipTLSVerify = true
        let tls = try await ClusterCredentials.load(allowed, logger: testLogger).tlsConfiguration()
        #expect(tls.certificateVerification == .none)

        // The opt-in does not turn verification off for a kubeconfig that keeps it on.
        try dir.write(kubeconfig(cluster: "insecure-skip-tls-verify: false", user: "token: abc"))
        #expect(try await ClusterCredentials.load(allowed, logger: testLogger).tlsConfiguration().certificateVerification == .fullVerification)
    }

    @Test("token and tokenFile give the Authorization header; token wins when both are set")
    func tokens() async throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try "from-file\n".write(toFile: dir.path + "/token", atomically: false, encoding: .utf8)
        try dir.write(kubeconfig(cluster: "", user: "tokenFile: token"))
        #expect(try await ClusterCredentials.load(dir.settings(), logger: testLogger).authorization() == "Bearer from-file")
        try dir.write(kubeconfig(cluster: "", user: "token: inline\ntokenFile: token"))
        #expect(try await ClusterCredentials.load(dir.settings(), logger: testLogger).authorization() == "Bearer inline")
        try "".write(toFile: dir.path + "/token", atomically: false, encoding: .utf8)
        try dir.write(kubeconfig(cluster: "", user: "tokenFile: token"))
        #expect(loadError(dir.settings()) == "\(dir.kubeconfig): users[0].user.tokenFile: \(dir.path)/token: empty: no token in it")
    }
}
