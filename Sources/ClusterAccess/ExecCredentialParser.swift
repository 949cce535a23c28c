import Foundation
import ReaperCore

/// Reads a plugin's stdout as an ExecCredential of the configured version.
struct ExecCredentialParser {
    let configuration: ExecPluginConfiguration
    let executable: String

    func error(_ message: String) -> ClusterAccessError {
        configuration.error("command", "the plugin \(executable) \(message)")
    }

    func parse(_ output: [UInt8]) throws(ClusterAccessError) -> ExecCredential {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(output))
        } catch {
            let start = UserText.excerpt(String(decoding: output.prefix(60), as: UTF8.self), limit: 40, quoting: true)
            throw self.error("printed no ExecCredential: not JSON (output starts \"\(start)\")")
        }
        guard let object = json as? [String: Any] else { throw error("printed no ExecCredential: not a JSON object") }
        guard object["kind"] as? String == "ExecCredential" else { throw error("printed no ExecCredential: kind is not ExecCredential") }
        let version = object["apiVersion"] as? String ?? ""
        guard version == configuration.apiVersion else {
            throw error("answered apiVersion \"\(UserText.excerpt(version))\", but the kubeconfig asks for \(configuration.apiVersion)")
        }
        guard let status = object["status"] as? [String: Any] else { throw error("printed an ExecCredential without status") }

        var credential = ExecCredential()
        if let token = try text(status, "token"), !token.isEmpty {
            credential.token = try Secret.bearerToken(token) { self.error("gave status.token that is not a bearer token: \($0)") }
        }
        let certificate = try text(status, "clientCertificateData"), key = try text(status, "clientKeyData")
        if (certificate == nil) != (key == nil) {
            throw error("gave \(certificate == nil ? "clientKeyData without clientCertificateData" : "clientCertificateData without clientKeyData")")
        }
        credential.clientCertificate = certificate.map { Array($0.utf8) }
        credential.clientKey = key.map { Array($0.utf8) }
        if credential.token == nil && credential.clientCertificate == nil {
            throw error("gave neither status.token nor status.clientCertificateData")
        }
        if let expiration = try text(status, "expirationTimestamp") {
            guard let date = RFC3339.parse(expiration) else {
                throw error("gave status.expirationTimestamp \"\(UserText.excerpt(expiration))\", not an RFC 3339 time")
            }
            credential.expiration = date
        }
        return credential
    }

    func text(_ status: [String: Any], _ key: String) throws(ClusterAccessError) -> String? {
        guard let value = status[key], !(value is NSNull) else { return nil }
        guard let string = value as? String else { throw error("gave status.\(key) that is not text") }
        return string
    }
}
