import AsyncHTTPClient
import ClusterAccess
import Foundation
import Testing
import TestSupport

/// Issue 18, items 10 and 15: every server URL is checked before anything
/// connects to it (a port over 65535 trapped in NIO's socket-address code,
/// and wrapped silently with a host name), and plain http to `[::1]` is the
/// loopback it is.
@Suite("Server URLs: ports, loopback, one-line errors")
struct ServerAddressTests {
    static let badPorts = [
        "http://127.0.0.1:65536", "https://127.0.0.1:70000", "https://kube.example.com:70000", "https://kube.example.com:65537/",
        "https://10.0.0.1:0", "https://[fd00::2]:99999", "https://10.0.0.1:-1", "https://10.0.0.1:18446744073709551617",
        "https://10.0.0.1:+443", "https://10.0.0.1:0x1bb",
    ]

    @Test("a kubeconfig server with a port outside 1-65535 is one line naming the field and the value", arguments: badPorts)
    func kubeconfigPort(_ server: String) throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write(kubeconfig(server: server, cluster: "", user: "token: x"))
        let error = try #require(loadError(dir.settings()), "\(server) was accepted")
        #expect(error.hasPrefix("\(dir.kubeconfig): clusters[0].cluster.server: \"\(server)\": "), "\(error)")
        #expect(error.contains("port"), "\(error)")
        #expect(!error.contains("\n"))
    }

    @Test("ports 1 and 65535, none (the scheme's), and IPv6 literals are accepted",
          arguments: ["https://10.0.0.1:1", "https://10.0.0.1:65535", "https://kube.example.com", "https://[fd00::2]:6443", "https://10.0.0.1:6443/prefix"])
    func goodPorts(_ server: String) throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write(kubeconfig(server: server, cluster: "", user: "token: x"))
        #expect(loadError(dir.settings()) == nil)
    }

    @Test("a kubelet URL with a bad port is refused naming podSource.kubeletURL", arguments: ["https://127.0.0.1:70000", "http://127.0.0.1:65536", "https://node-1:65536"])
    func retargetPort(_ url: String) throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write(kubeconfig(cluster: "", user: "token: x"))
        let credentials = try ClusterCredentials.load(dir.settings(), logger: testLogger)
        let error = #expect(throws: ClusterAccessError.self) {
            try credentials.retargeted(server: url, field: "podSource.kubeletURL", certificateAuthorityFile: nil)
        }
        #expect(error?.description.hasPrefix("podSource.kubeletURL: \"\(url)\": ") == true, "\(error?.description ?? "")")
    }

    @Test("a node name that is no DNS name (a kubeconfig user system:node:127.0.0.1:70000/x) is refused, naming where it came from",
          arguments: ["127.0.0.1:70000/x", "Node-1", "node 1", "node_1", "a..b", "-node", String(repeating: "a", count: 254)])
    func nodeNames(_ name: String) throws {
        let resolved = try #require(NodeName.resolve(configured: nil, environment: [:], kubeconfigUserName: "system:node:\(name)", hostname: { "fallback" }))
        let error = #expect(throws: ClusterAccessError.self, "\(name) was taken as a node name") {
            try NodeName.validated(resolved.name, source: resolved.source)
        }
        #expect(error?.description.contains("kubeconfig user") == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("\n") == false)
    }

    @Test("real node names pass", arguments: ["datagen-1-35", "ip-10-0-1-23.ec2.internal", "gke-pool-1-abcd", "n"])
    func goodNodeNames(_ name: String) throws {
        #expect(try NodeName.validated(name, source: "podSource.nodeName") == name)
    }

    @Test("plain http to [::1] is loopback (as the README says); to other addresses it is refused",
          arguments: [("http://[::1]:8001", true), ("http://127.0.0.1:8001", true), ("http://localhost:8001", true), ("http://[::2]:8001", false), ("http://[fd00::1]:8001", false)])
    func loopback(_ server: String, _ accepted: Bool) throws {
        let dir = try KubeconfigDirectory()
        defer { dir.remove() }
        try dir.write(kubeconfig(server: server, cluster: "", user: "token: x"))
        let error = loadError(dir.settings())
        if accepted {
            #expect(error == nil, "\(error ?? "")")
        } else {
            #expect(error?.contains("only https") == true, "\(error ?? "accepted")")
        }
    }
}

/// Issue 18, item 11: what the HTTP client says about a request never shows
/// the request's credentials.
@Suite("Secrets in HTTP client errors")
struct HTTPErrorRedactionTests {
    struct EchoingError: Error, CustomStringConvertible {
        var description: String
    }

    @Test("AHC's header validation error, which echoes the header, and any error quoting the token, are shown without it")
    func redacted() {
        var request = HTTPClientRequest(url: "https://127.0.0.1:6443/api/v1/pods")
        request.headers.add(name: "Authorization", value: "Bearer s3cr3t-token-value")
        let echoed = [
            ClusterHTTP.describe(HTTPClientError.invalidHeaderFieldValues(["Bearer s3cr3t-token-value\r\nX: 1"]), request: request),
            ClusterHTTP.describe(EchoingError(description: "refused header Authorization: Bearer s3cr3t-token-value"), request: request),
            ClusterHTTP.describe(EchoingError(description: "token s3cr3t-token-value rejected"), request: request),
        ]
        #expect(echoed.allSatisfy { !$0.contains("s3cr3t") }, "\(echoed)")
        #expect(echoed[0] == HTTPClientError.invalidHeaderFieldValues([]).shortDescription)
        #expect(echoed[2] == "token <redacted> rejected")
    }
}
