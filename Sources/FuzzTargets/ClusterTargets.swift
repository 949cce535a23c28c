import ClusterAccess
import Foundation
import NIOCore

extension FuzzTargets {
    /// A server URL (the first line) and, optionally, a kubeconfig user name
    /// (the second), as a kubeconfig's `server`, `podSource.kubeletURL` and
    /// the kubelet URL made from a `system:node:<name>` user give them
    /// (issue 18, item 10). A refusal is one clean line; an accepted URL must
    /// be one NIO can connect to: a port over 65535 trapped in its
    /// socket-address code, and a resolver wraps one silently.
    public static func url(_ bytes: [UInt8]) throws(FuzzFinding) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }
        let lines = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        _ = try acceptedURL(lines[0])
        guard lines.count > 1,
              let node = NodeName.resolve(configured: nil, environment: [:], kubeconfigUserName: lines[1], hostname: { nil })
        else { return }
        let name: String
        do throws(ClusterAccessError) {
            name = try NodeName.validated(node.name, source: node.source)
        } catch {
            try MessageContract.check(error.description, harness: "url")
            return
        }
        // A node name that passed is a DNS name: the kubelet URL made from it must pass too.
        guard try acceptedURL("https://\(name):10250") != nil else {
            throw FuzzFinding("url", "node name \(MessageContract.excerpt(name)) passed, but its kubelet URL was refused")
        }
    }

    /// The URL as accepted, or nil when it was refused cleanly.
    static func acceptedURL(_ text: String) throws(FuzzFinding) -> String? {
        let accepted: String
        do throws(ClusterAccessError) {
            accepted = try ClusterURL.validated(text, field: "fuzz.server")
        } catch {
            try MessageContract.check(error.description, harness: "url")
            return nil
        }
        guard let components = URLComponents(string: accepted), let host = components.host, !host.isEmpty else {
            throw FuzzFinding("url", "accepted \(MessageContract.excerpt(accepted)), which Foundation cannot parse")
        }
        let port = components.port ?? 443
        guard (1...65535).contains(port) else {
            throw FuzzFinding("url", "accepted \(MessageContract.excerpt(accepted)) with port \(port)")
        }
        // Where the trap was: an IP literal and its port made into a socket address.
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        _ = try? SocketAddress(ipAddress: bare, port: port)
        return accepted
    }
}
