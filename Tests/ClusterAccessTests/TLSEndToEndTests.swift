import AsyncHTTPClient
import ClusterAccess
import Foundation
import NIOSSL
import Testing
import TestSupport

/// `openssl s_server` as a child process: TLS with the test CA's server
/// certificate for 127.0.0.1, requiring a client certificate from that CA
/// (`-Verify 1`), answering each request with a status page (`-www`).
final class OpenSSLServer: Sendable {
    let process: BackgroundProcess
    let port: Int
    let log: String

    init(pki: TestPKI, directory: TemporaryDirectory) throws {
        let log = directory.appending("s_server.log")
        self.log = log
        process = try BackgroundProcess("/usr/bin/openssl", [
            "s_server", "-accept", "127.0.0.1:0", "-cert", pki.serverCertificate, "-key", pki.serverKey,
            "-CAfile", pki.caCertificate, "-Verify", "1", "-verify_return_error", "-www",
        ], log: log)
        guard let found = Self.acceptedPort(log: log) else {
            throw ExampleNodeError(message: "openssl s_server did not start: \(process.log)")
        }
        port = found
    }

    /// The port from s_server's `ACCEPT 127.0.0.1:PORT` line, once it is there.
    static func acceptedPort(log: String) -> Int? {
        var found: Int?
        _ = eventually(timeout: 10) {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("ACCEPT ") }) else { return false }
            found = line.split(separator: ":").last.flatMap { Int($0) }
            return true
        }
        return found
    }

    var url: String { "https://127.0.0.1:\(port)" }

    func stop() { process.stop(signal: SIGKILL, timeout: 5) }
}

@Suite("TLS against a real server")
struct TLSEndToEndTests {
    let pki = TestPKI.shared

    func credentials(_ dir: KubeconfigDirectory, server: String, ca: String, client: String?) throws -> ClusterCredentials {
        let user = client.map { "client-certificate: \(pki.clientCertificate($0))\nclient-key: \(pki.clientKey($0))\ntoken: secret-token" } ?? "token: secret-token"
        try dir.write(kubeconfig(server: server, cluster: "certificate-authority: \(ca)", user: user))
        return try ClusterCredentials.load(dir.settings(), logger: testLogger)
    }

    func get(_ credentials: ClusterCredentials, client: HTTPClient) async throws -> Int {
        let request = try await ClusterHTTP.request("/api/v1/pods?limit=1", credentials: credentials)
        let response = try await client.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    @Test("the request reaches the server with the client certificate; without it, or with another CA, it does not")
    func endToEnd() async throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        let server = try OpenSSLServer(pki: pki, directory: dir.directory)
        defer { server.stop() }
        // A short connect timeout: the client retries a failed handshake until it passes.
        let client = ClusterHTTP.makeClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, connectTimeout: .seconds(1), logger: testLogger)

        let good = try credentials(dir, server: server.url, ca: pki.caCertificate, client: "client-a")
        do {
            #expect(try await get(good, client: client) == 200)
        } catch {
            Issue.record("the request with the client certificate failed: \(error); server log: \(server.process.log)")
        }

        let anonymous = try credentials(dir, server: server.url, ca: pki.caCertificate, client: nil)
        await #expect(throws: (any Error).self) { try await get(anonymous, client: client) }

        let wrongCA = try credentials(dir, server: server.url, ca: pki.otherCACertificate, client: "client-a")
        let refused = await #expect(throws: (any Error).self) { try await get(wrongCA, client: client) }
        #expect(String(describing: refused).contains("CERTIFICATE_VERIFY_FAILED"), "\(String(describing: refused))")

        // The same identity against another server with that server's CA: the kubelet source's case.
        let retargeted = try wrongCA.retargeted(server: server.url + "/", certificateAuthorityFile: pki.caCertificate)
        #expect(retargeted.server == server.url)
        #expect(try await get(retargeted, client: client) == 200)

        try await client.shutdown()
    }

    @Test("the request carries the Authorization header, Accept and the current TLS configuration")
    func requestShape() async throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        let credentials = try credentials(dir, server: "https://127.0.0.1:6443", ca: pki.caCertificate, client: "client-a")
        let request = try await ClusterHTTP.request("/api/v1/pods?watch=1", credentials: credentials)
        #expect(request.url == "https://127.0.0.1:6443/api/v1/pods?watch=1")
        #expect(request.headers["Authorization"] == ["Bearer secret-token"])
        #expect(request.headers["Accept"] == ["application/json"])
        #expect(try #require(request.tlsConfiguration).bestEffortEquals(try await credentials.tlsConfiguration()))
    }
}
