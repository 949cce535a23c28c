import ClusterAccess
import Foundation
import KubeTestServer
import ReaperCore
@testable import PodSources
import Testing
import TestSupport

/// Issue 18, item 10: a port over 65535, from a kubeconfig server, the
/// kubelet URL or a node name taken from the kubeconfig user, trapped in
/// NIO's socket-address code (SIGILL, a crash loop under systemd). Each must
/// be a credentials problem naming the field, and nothing may connect.
@Suite("Ports outside 1-65535 never reach a socket")
struct PortTests {
    static let cases: [(name: String, kind: PodSourceKind, server: String, user: String, kubeletURL: String?, field: String)] = [
        ("apiserver-server-70000", .apiserver, "https://127.0.0.1:70000", "test-user", nil, "clusters[0].cluster.server"),
        ("apiserver-http-65536", .apiserver, "http://127.0.0.1:65536", "test-user", nil, "clusters[0].cluster.server"),
        ("apiserver-hostname-70000", .apiserver, "https://localhost:70000", "test-user", nil, "clusters[0].cluster.server"),
        ("kubelet-url-70000", .kubelet, "https://127.0.0.1:6443", "test-user", "https://127.0.0.1:70000", "podSource.kubeletURL"),
        ("kubelet-node-name-port", .kubelet, "https://127.0.0.1:6443", "system:node:127.0.0.1:70000/x", nil, "kubeconfig user"),
    ]

    @Test("a bad port is a credentials problem naming the field; no trap, no request", arguments: cases.map(\.name))
    func refused(_ name: String) async throws {
        let item = try #require(Self.cases.first { $0.name == name })
        let scratch = try TemporaryDirectory("ports")
        defer { scratch.remove() }
        let pki = try TestPKI(directory: scratch.appending("pki"), nodeName: CapturedPods.nodeName)
        let kubeconfig = try Kubeconfig.single(
            server: item.server, trust: .certificateAuthorityFile(pki.ca.certificate), auth: [.token("t")], user: item.user
        ).write(to: scratch.appending("kubeconfig"))
        var settings = PodSourceSettings()
        settings.kind = item.kind
        settings.access.kubeconfig = kubeconfig
        settings.access.environment = [:]
        settings.kubeletURL = item.kubeletURL
        settings.requestTimeout = 2
        let source: any PodSource
        if item.kind == .kubelet {
            let kubelet = KubeletPodSource(settings: settings, logger: TestCluster.logger)
            await kubelet.pollOnce()
            source = kubelet
        } else {
            let api = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            await api.listOnce()
            source = api
        }
        let status = source.status()
        #expect(status.problemKind == "credentials", "\(name): \(status.problemKind ?? "none"): \(status.problem ?? "")")
        #expect(status.problem?.contains(item.field) == true, "\(name): \(status.problem ?? "")")
        #expect(status.problem?.contains("port") == true || item.field == "kubeconfig user", "\(name): \(status.problem ?? "")")
        #expect(!source.currentSnapshot().synced)
    }
}
