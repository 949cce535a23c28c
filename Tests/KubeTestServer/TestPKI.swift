import Foundation
import TestSupport

/// A certificate and its private key, as PEM files.
public struct CertificateFiles: Sendable, Hashable {
    public var certificate: String
    public var key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }

    /// The certificate's PEM text.
    public func certificatePEM() throws -> String { try String(contentsOfFile: certificate, encoding: .utf8) }
    /// The key's PEM text.
    public func keyPEM() throws -> String { try String(contentsOfFile: key, encoding: .utf8) }
}

/// A throwaway PKI made with the `openssl` CLI at test time (no checked-in keys):
/// a cluster CA, a server certificate for `localhost` and `127.0.0.1`, a node
/// client certificate (`CN=system:node:<node>`, `O=system:nodes`, as the
/// kubelet's own), and an unrelated second CA for wrong-CA tests. EC P-256 keys
/// (fast to make), PKCS#8 PEM, valid for two days.
public final class TestPKI: Sendable {
    /// Where the PEM files are (a fresh temp directory unless one was given).
    public let directory: String
    /// The node the client certificate names.
    public let nodeName: String
    /// The cluster CA (signs the server and client certificates).
    public let ca: CertificateFiles
    /// The API server's / kubelet's serving certificate (SAN `DNS:localhost`, `IP:127.0.0.1`).
    public let server: CertificateFiles
    /// The node's client certificate: `CN=system:node:<nodeName>`, `O=system:nodes`.
    public let client: CertificateFiles
    /// A CA that signed nothing of this PKI: trusting it must fail the handshake.
    public let unrelatedCA: CertificateFiles

    /// `directory`: where to write (created if missing); nil makes a temp directory.
    public init(directory: String? = nil, nodeName: String = "test-node") throws {
        let directory = try directory ?? TemporaryDirectory("pki").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.nodeName = nodeName
        ca = try Self.makeCA(in: directory, name: "ca", commonName: "kube-test-ca")
        unrelatedCA = try Self.makeCA(in: directory, name: "unrelated-ca", commonName: "unrelated-test-ca")
        server = try Self.issue(
            in: directory, name: "server", subject: "/CN=localhost", signer: ca,
            extensions: [
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "extendedKeyUsage=serverAuth",
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature,keyEncipherment",
            ]
        )
        client = try Self.issueClient(in: directory, name: "client", commonName: "system:node:\(nodeName)", organization: "system:nodes", signer: ca)
    }

    /// Issues another client certificate signed by the cluster CA (for rotation
    /// tests: write it over the files a kubeconfig names). `name` is the file stem.
    public func issueClientCertificate(
        name: String, commonName: String? = nil, organization: String? = "system:nodes"
    ) throws -> CertificateFiles {
        try Self.issueClient(
            in: directory, name: name, commonName: commonName ?? "system:node:\(nodeName)",
            organization: organization, signer: ca
        )
    }

    /// A client certificate signed by `unrelatedCA` (the server must refuse it).
    public func issueUntrustedClientCertificate(name: String) throws -> CertificateFiles {
        try Self.issueClient(
            in: directory, name: name, commonName: "system:node:\(nodeName)", organization: "system:nodes", signer: unrelatedCA
        )
    }

    /// A serving certificate for `localhost`/`127.0.0.1` signed by `unrelatedCA`
    /// (give it as `servingCertificate`: a client trusting `ca` must refuse the server).
    public func issueUntrustedServerCertificate(name: String) throws -> CertificateFiles {
        try Self.issue(
            in: directory, name: name, subject: "/CN=localhost", signer: unrelatedCA,
            extensions: [
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "extendedKeyUsage=serverAuth",
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature,keyEncipherment",
            ]
        )
    }

    /// Removes the directory and everything in it.
    public func remove() { try? FileManager.default.removeItem(atPath: directory) }

    // MARK: openssl

    private static func makeCA(in directory: String, name: String, commonName: String) throws -> CertificateFiles {
        let files = CertificateFiles(certificate: "\(directory)/\(name).crt", key: "\(directory)/\(name).key")
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", files.key, "-out", files.certificate, "-days", "2", "-subj", "/CN=\(commonName)",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ])
        return files
    }

    private static func issueClient(
        in directory: String, name: String, commonName: String, organization: String?, signer: CertificateFiles
    ) throws -> CertificateFiles {
        var subject = ""
        if let organization { subject += "/O=\(organization)" }
        subject += "/CN=\(commonName)"
        return try issue(
            in: directory, name: name, subject: subject, signer: signer,
            extensions: [
                "extendedKeyUsage=clientAuth",
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature,keyEncipherment",
            ]
        )
    }

    private static func issue(
        in directory: String, name: String, subject: String, signer: CertificateFiles, extensions: [String]
    ) throws -> CertificateFiles {
        let files = CertificateFiles(certificate: "\(directory)/\(name).crt", key: "\(directory)/\(name).key")
        let request = "\(directory)/\(name).csr", extensionFile = "\(directory)/\(name).ext"
        try Data(extensions.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: extensionFile))
        try openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", files.key, "-out", request, "-subj", subject,
        ])
        // A random serial, not -CAcreateserial: no shared serial file to race on.
        var serial = [UInt8](repeating: 0, count: 8)
        for index in serial.indices { serial[index] = UInt8.random(in: 0...255) }
        serial[0] &= 0x7f
        try openssl([
            "x509", "-req", "-in", request, "-CA", signer.certificate, "-CAkey", signer.key,
            "-set_serial", "0x" + serial.map { String(format: "%02x", $0) }.joined(),
            "-days", "2", "-out", files.certificate, "-extfile", extensionFile,
        ])
        try? FileManager.default.removeItem(atPath: request)
        try? FileManager.default.removeItem(atPath: extensionFile)
        return files
    }

    private static func openssl(_ arguments: [String]) throws {
        let result = try ChildProcess.run("/usr/bin/env", ["openssl"] + arguments)
        guard result.status == 0 else {
            throw TestPKIError(message: "openssl \(arguments.first ?? "") failed (\(result.status)): \(result.stderr)")
        }
    }
}

public struct TestPKIError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
