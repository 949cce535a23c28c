import ClusterAccess
import Foundation
import Logging
import NIOSSL
import TestSupport

/// Certificates made with the `openssl` CLI at test time: a CA, a server
/// certificate for 127.0.0.1, two client certificates (for rotation), and a
/// second CA that signed nothing the server uses.
struct TestPKI: Sendable {
    let directory: String
    var caCertificate: String { directory + "/ca.crt" }
    var otherCACertificate: String { directory + "/other-ca.crt" }
    var serverCertificate: String { directory + "/server.crt" }
    var serverKey: String { directory + "/server.key" }
    func clientCertificate(_ name: String) -> String { directory + "/\(name).crt" }
    func clientKey(_ name: String) -> String { directory + "/\(name).key" }
    /// Certificate and key in one file, as kubelet-client-current.pem holds them.
    func clientBundle(_ name: String) -> String { directory + "/\(name).pem" }

    /// Made once per test process: key generation is the slow part.
    static let shared: TestPKI = {
        do { return try TestPKI() } catch { fatalError("cannot make test certificates: \(error)") }
    }()

    init() throws {
        directory = try TemporaryDirectory("pki").path
        let script = """
        set -e
        cd "\(directory)"
        ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        openssl req -x509 $ec -keyout ca.key -out ca.crt -subj /CN=test-ca -days 2 2>/dev/null
        openssl req -x509 $ec -keyout other-ca.key -out other-ca.crt -subj /CN=other-ca -days 2 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext
        openssl req $ec -keyout server.key -out server.csr -subj /CN=kube-apiserver 2>/dev/null
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext 2>/dev/null
        printf 'extendedKeyUsage=clientAuth\\n' > client.ext
        for name in client-a client-b; do
          openssl req $ec -keyout $name.key -out $name.csr -subj "/O=system:nodes/CN=system:node:$name" 2>/dev/null
          openssl x509 -req -in $name.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $name.crt -days 2 -extfile client.ext 2>/dev/null
          cat $name.crt $name.key > $name.pem
        done
        """
        let result = try ChildProcess.run("/bin/sh", ["-c", script])
        guard result.status == 0 else { throw ExampleNodeError(message: "openssl failed: \(result.stderr)") }
    }

    func base64(_ path: String) throws -> String {
        try Data(contentsOf: URL(fileURLWithPath: path)).base64EncodedString()
    }

    /// The subject of a PEM certificate, as openssl prints it.
    static func subject(ofPEM pem: [UInt8]) throws -> String {
        try ChildProcess.run("/usr/bin/openssl", ["x509", "-noout", "-subject"], input: String(decoding: pem, as: UTF8.self))
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A temp directory with a kubeconfig (and whatever else a test puts there).
struct KubeconfigDirectory {
    let directory: TemporaryDirectory
    var path: String { directory.path }
    var kubeconfig: String { directory.appending("kubeconfig") }

    init() throws {
        directory = try TemporaryDirectory("kubeconfig")
    }

    func write(_ text: String, to name: String = "kubeconfig") throws {
        try text.write(toFile: directory.appending(name), atomically: false, encoding: .utf8)
    }

    func settings(context: String? = nil) -> ClusterAccessSettings {
        var settings = ClusterAccessSettings(kubeconfig: kubeconfig, context: context)
        settings.environment = ["PATH": "/usr/bin:/bin"]
        return settings
    }

    func remove() { directory.remove() }
}

/// A kubeconfig with one cluster, one user and one context, the fields given verbatim.
func kubeconfig(server: String = "https://127.0.0.1:6443", cluster: String, user: String) -> String {
    """
    apiVersion: v1
    kind: Config
    clusters:
    - name: test
      cluster:
        server: \(server)
    \(indent(cluster, by: 4))
    contexts:
    - name: test-context
      context:
        cluster: test
        user: test-user
    current-context: test-context
    preferences: {}
    users:
    - name: test-user
      user:
    \(indent(user, by: 4))
    """
}

func indent(_ text: String, by spaces: Int) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.isEmpty ? "" : String(repeating: " ", count: spaces) + $0 }.joined(separator: "\n")
}

let testLogger = Logger(label: "cluster-access-tests")

/// Loads and returns the error's line, or nil when it loaded.
func loadError(_ settings: ClusterAccessSettings) -> String? {
    do {
        _ = try ClusterCredentials.load(settings, logger: testLogger)
        return nil
    } catch {
        return error.description
    }
}

/// The first certificate of a PEM file.
func firstCertificate(_ path: String) throws -> NIOSSLCertificate {
    try NIOSSLCertificate.fromPEMFile(path)[0]
}
