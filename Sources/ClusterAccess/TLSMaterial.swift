import NIOSSL

/// The bytes a TLS configuration is built from; the configuration is
/// rebuilt only when they change, so the HTTP client's connection pool
/// (keyed by the configuration) keeps its connections between rotations.
struct TLSMaterial: Sendable, Hashable {
    var authority: [UInt8]?
    var certificate: [UInt8]?
    var key: [UInt8]?
    var skipsVerification: Bool

    /// Where one part came from, for messages: the kubeconfig (or service
    /// account directory), its field, and the file the field named, if any.
    struct Origin: Sendable {
        var file: String
        var field: String
        var path: String?

        init(file: String, field: String, path: String? = nil) {
            self.file = file
            self.field = field
            self.path = path
        }

        init(_ material: CredentialMaterial) {
            file = material.origin
            field = material.field
            if case .file(let path) = material.content { self.path = path }
        }

        func error(_ message: String) -> ClusterAccessError {
            ClusterAccessError(file: file, field: field, (path.map { "\($0): " } ?? "") + message)
        }
    }

    /// Where each part came from.
    struct Sources: Sendable {
        var authority: Origin?
        var certificate: Origin?
        var key: Origin?
    }

    func configuration(sources: Sources) throws(ClusterAccessError) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = skipsVerification ? .none : .fullVerification
        if let authority, let origin = sources.authority {
            tls.trustRoots = .certificates(try Self.certificates(authority, origin: origin))
        }
        if let certificate, let key, let certificateOrigin = sources.certificate, let keyOrigin = sources.key {
            let chain = try Self.certificates(certificate, origin: certificateOrigin)
            let privateKey: NIOSSLPrivateKey
            do {
                privateKey = try NIOSSLPrivateKey(bytes: key, format: .pem)
            } catch {
                throw keyOrigin.error("no PEM private key in it (\(error))")
            }
            tls.certificateChain = chain.map { .certificate($0) }
            tls.privateKey = .privateKey(privateKey)
            // BoringSSL checks that the key belongs to the certificate here,
            // so a mismatch is this line rather than a failed handshake later.
            do {
                _ = try NIOSSLContext(configuration: tls)
            } catch {
                throw keyOrigin.error("does not match the client certificate of \(certificateOrigin.field) (\(error))")
            }
        }
        return tls
    }

    static func certificates(_ bytes: [UInt8], origin: Origin) throws(ClusterAccessError) -> [NIOSSLCertificate] {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw origin.error("not a PEM certificate (\(error))")
        }
        guard !certificates.isEmpty else {
            throw origin.error("no PEM certificate in it")
        }
        return certificates
    }
}
