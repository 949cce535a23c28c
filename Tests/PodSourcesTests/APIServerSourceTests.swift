import ClusterAccess
import Foundation
import KubeTestServer
import Logging
@testable import PodSources
import ReaperCore
import Testing
import TestSupport

/// A test server with the captured pods of a real cluster (nri-kubernetes'
/// `kubectl get pods -A -o yaml`, Tests/KubeTestServer/Fixtures/SOURCES.md),
/// its PKI and a kubeconfig like kubeadm's kubelet.conf.
struct TestCluster {
    static let metricsServer = "5e5613d6-fccb-40d6-967b-447697d4d871"  // Running
    static let failJob = "0961a396-5fff-45fe-a970-19b2aac96e5d"  // Failed
    static let logger = Logger(label: "pod-source-tests")

    let pki: TestPKI
    let server: KubeTestServer
    let kubeconfig: String

    /// Runs `body` with a started cluster; stops it afterwards, whatever happens.
    static func with<T: Sendable>(
        clientCertificates: KubeTestServer.ClientCertificates = .required, acceptedTokens: Set<String> = [],
        auth: (TestPKI) throws -> [KubeconfigAuth] = { [.clientCertificateFiles($0.client)] },
        _ body: (TestCluster) async throws -> T
    ) async throws -> T {
        let pki = try TestPKI(nodeName: CapturedPods.nodeName)
        let server = try await KubeTestServer.start(.init(pki: pki, clientCertificates: clientCertificates, acceptedTokens: acceptedTokens))
        let cluster: TestCluster
        do {
            try server.loadPods(document: CapturedPods.json(CapturedPods.kubectlPods))
            let kubeconfig = try Kubeconfig.single(
                server: server.url, trust: .certificateAuthorityFile(pki.ca.certificate), auth: auth(pki),
                context: "system:node:\(CapturedPods.nodeName)@kubernetes", user: "system:node:\(CapturedPods.nodeName)"
            ).write(to: pki.directory + "/kubeconfig")
            cluster = TestCluster(pki: pki, server: server, kubeconfig: kubeconfig)
        } catch {
            await server.stop()
            pki.remove()
            throw error
        }
        do {
            let result = try await body(cluster)
            await server.stop()
            pki.remove()
            return result
        } catch {
            await server.stop()
            pki.remove()
            throw error
        }
    }

    /// Quick to notice trouble, quick to retry: the tests' pacing.
    var settings: PodSourceSettings {
        var settings = PodSourceSettings()
        settings.kind = .apiserver
        settings.access.kubeconfig = kubeconfig
        settings.access.environment = [:]
        settings.stallTimeout = 1
        settings.maxBackoff = 0.2
        settings.requestTimeout = 5
        // The daemon's start spread and streaming list are the subject of
        // FleetCostTests; here the loop starts at once and LISTs.
        settings.startupSpread = 0
        settings.watchList = false
        return settings
    }

    /// Runs the source's loop while `body` runs, then cancels it.
    static func running<Source: PodSource & ServiceRunnable, T: Sendable>(
        _ source: Source, _ body: () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await source.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

/// What the tests need of a source's loop.
protocol ServiceRunnable: Sendable {
    func run() async throws
}

extension APIServerPodSource: ServiceRunnable {}
extension KubeletPodSource: ServiceRunnable {}

@Suite("APIServerPodSource against the test server")
struct APIServerSourceTests {
    func phase(_ source: some PodSource, _ uid: String) -> String? {
        source.currentSnapshot().pods.first { $0.uid == uid }?.phase
    }

    @Test("one LIST (--plan): the node's captured pods, the list's resourceVersion, refreshedAt when the request was sent")
    func listOnce() async throws {
        try await TestCluster.with { cluster in
            let before = Date()
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            await source.listOnce()
            let snapshot = source.currentSnapshot()
            #expect(snapshot.errors.isEmpty, "\(snapshot.errors)")
            #expect(snapshot.synced && snapshot.isComplete && snapshot.source == .apiserver)
            #expect(Set(snapshot.pods.map(\.uid)).isSuperset(of: [TestCluster.metricsServer, TestCluster.failJob]))
            #expect(phase(source, TestCluster.failJob) == "Failed")
            #expect(snapshot.resourceVersion == String(cluster.server.resourceVersion))
            let refreshed = try #require(snapshot.refreshedAt)
            #expect(refreshed >= before && refreshed <= Date())
            let list = try #require(cluster.server.requests.first { $0.kind == .list })
            #expect(list.query["fieldSelector"] == "spec.nodeName=\(CapturedPods.nodeName)")
            #expect(list.clientCommonName == "system:node:\(CapturedPods.nodeName)")
            #expect(snapshot.path.hasPrefix(cluster.server.url + "/api/v1/pods"))
        }
    }

    @Test("WATCH from the list's resourceVersion with bookmarks and a jittered timeout; MODIFIED and DELETED change the view, a BOOKMARK its refresh time")
    func watch() async throws {
        try await TestCluster.with { cluster in
            var settings = cluster.settings
            settings.watchTimeout = 60
            settings.stallTimeout = 60  // this test wants one LIST only
            settings.bookmarkMargin = 0.2
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 })
                let listed = try #require(source.currentSnapshot().refreshedAt)
                let watch = try #require(cluster.server.requests.first { $0.kind == .watch })
                #expect(watch.query["allowWatchBookmarks"] == "true")
                #expect(watch.query["resourceVersion"] == source.currentSnapshot().resourceVersion)
                let timeout = try #require(watch.query["timeoutSeconds"].flatMap(Int.init))
                #expect((60...120).contains(timeout))

                try cluster.server.setPhase(uid: TestCluster.metricsServer, "Succeeded", terminateContainers: false)
                #expect(await waitUntil(every: .milliseconds(20)) { phase(source, TestCluster.metricsServer) == "Succeeded" })
                #expect(source.currentSnapshot().refreshedAt == listed, "an event must not advance refreshedAt")
                try cluster.server.deletePod(uid: TestCluster.failJob)
                #expect(await waitUntil(every: .milliseconds(20)) { phase(source, TestCluster.failJob) == nil })

                try await Task.sleep(for: .milliseconds(300))  // past the margin
                let bookmarkSent = Date()
                cluster.server.sendBookmark()
                #expect(await waitUntil(every: .milliseconds(20)) { source.currentSnapshot().refreshedAt != listed })
                let vouched = try #require(source.currentSnapshot().refreshedAt)
                #expect(vouched <= Date().addingTimeInterval(-settings.bookmarkMargin))
                #expect(vouched >= bookmarkSent.addingTimeInterval(-settings.bookmarkMargin))
                #expect(source.currentSnapshot().resourceVersion == String(cluster.server.resourceVersion))
                #expect(cluster.server.listCount == 1)
            }
        }
    }

    /// A 410 or a garbage line (an event lost) ends in a relist; a cut or a
    /// stall lost no event, so the watch resumes from the view's
    /// resourceVersion and the resumed watch's BOOKMARK syncs the view again,
    /// with no LIST (issue 20). Between the failure and either, the view is
    /// unsynced and intact.
    @Test("a 410 and a garbage line relist; a watch cut mid-event or a stall resume from the resourceVersion, synced again by a BOOKMARK; the view stays intact",
          arguments: ["cut", "expired", "stall", "garbage"])
    func relists(_ failure: String) async throws {
        try await TestCluster.with { cluster in
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 })
                let pods = source.currentSnapshot().pods
                let version = source.currentSnapshot().resourceVersion
                let watches = cluster.server.watchCount
                // The relist will fail until released: the unsynced view can be seen.
                cluster.server.setFailure(500, for: [.list])
                switch failure {
                case "cut": cluster.server.dropWatches(.midLine)
                case "expired": cluster.server.expireHistory()
                case "stall": cluster.server.stall()
                default: cluster.server.injectGarbageLine()
                }
                #expect(await waitUntil(every: .milliseconds(20)) { !source.currentSnapshot().synced }, "\(failure): never unsynced")
                let unsynced = source.currentSnapshot()
                #expect(unsynced.pods == pods, "\(failure): the view changed")
                #expect(!unsynced.isComplete)
                if failure == "stall" { cluster.server.releaseStall() }
                let lists = cluster.server.listCount
                cluster.server.setFailure(nil, for: [.list])
                if failure == "cut" || failure == "stall" {
                    #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.watchCount > watches })
                    let resumed = cluster.server.requests.filter { $0.kind == .watch }.last
                    #expect(resumed?.query["resourceVersion"] == version, "\(failure): not resumed from the view's resourceVersion")
                    #expect(!source.currentSnapshot().synced, "\(failure): synced before the resumed watch vouched for the view")
                    // The watch cache's periodic bookmarks (a stalled watch
                    // may still be resuming when the first is sent).
                    cluster.server.setAutomaticBookmarks(every: .milliseconds(100))
                    #expect(await waitUntil(every: .milliseconds(20)) { source.currentSnapshot().synced }, "\(failure): the BOOKMARK did not sync")
                    #expect(cluster.server.listCount == lists, "\(failure): relisted")
                } else {
                    #expect(await waitUntil(every: .milliseconds(20)) { source.currentSnapshot().synced && cluster.server.listCount > lists }, "\(failure): no relist")
                }
                #expect(source.currentSnapshot().pods.map(\.uid) == pods.map(\.uid))
                let status = source.status()
                #expect(status.state == .synced)
                let expectedKind = ["cut": "unreachable", "expired": "expired", "stall": "stalled", "garbage": "bad-answer"][failure]!
                #expect(status.failures[expectedKind, default: 0] >= 1, "\(status.failures)")
            }
        }
    }

    @Test("a watch the server ends cleanly re-watches from the last resourceVersion, without a relist")
    func cleanEnd() async throws {
        try await TestCluster.with { cluster in
            var settings = cluster.settings
            settings.stallTimeout = 60
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 })
                try cluster.server.setPhase(uid: TestCluster.metricsServer, "Succeeded", terminateContainers: false)
                #expect(await waitUntil(every: .milliseconds(20)) { phase(source, TestCluster.metricsServer) == "Succeeded" })
                let version = source.currentSnapshot().resourceVersion
                cluster.server.dropWatches(.endOfStream)
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.watchCount == 2 })
                let second = cluster.server.requests.filter { $0.kind == .watch }.last
                #expect(second?.query["resourceVersion"] == version)
                #expect(cluster.server.listCount == 1)
                #expect(source.currentSnapshot().synced)
            }
        }
    }

    @Test("401: a failing state with the problem; the view stays empty and unsynced")
    func unauthorized() async throws {
        try await TestCluster.with(clientCertificates: .notRequested, acceptedTokens: ["right"], auth: { _ in [.token("wrong")] }) { cluster in
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { source.status().failures["unauthorized", default: 0] >= 3 })
                let status = source.status()
                #expect(status.state == .failing && status.problemKind == "unauthorized")
                #expect(status.problem?.contains("HTTP 401") == true, "\(status.problem ?? "")")
                #expect(!source.currentSnapshot().synced && source.currentSnapshot().pods.isEmpty)
            }
        }
    }

    @Test("a rotated token file is used by the next request, without a restart")
    func tokenRotation() async throws {
        let directory = try TemporaryDirectory("token")
        defer { directory.remove() }
        let tokenFile = directory.appending("token")
        try "first\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        try await TestCluster.with(clientCertificates: .notRequested, acceptedTokens: ["first"], auth: { _ in [.tokenFile(tokenFile)] }) { cluster in
            // A cut watch resumes, and is vouched for again by its next BOOKMARK.
            cluster.server.setAutomaticBookmarks(every: .milliseconds(200))
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 && source.currentSnapshot().synced })
                // Rotate: the server takes only the new token from now on.
                try "second\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
                cluster.server.setAcceptedTokens(["second"])
                cluster.server.dropWatches(.midLine)
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.requests.contains { $0.bearerToken == "second" && $0.status == 200 } })
                #expect(await waitUntil(every: .milliseconds(20)) { source.currentSnapshot().synced })
            }
        }
    }

    @Test("a rotated client certificate (kubelet-client-current.pem) is used by the next connection, without a restart")
    func certificateRotation() async throws {
        try await TestCluster.with { cluster in
            // A cut watch resumes, and is vouched for again by its next BOOKMARK.
            cluster.server.setAutomaticBookmarks(every: .milliseconds(200))
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 })
                let rotated = try cluster.pki.issueClientCertificate(name: "rotated", commonName: "system:node:\(CapturedPods.nodeName)-rotated")
                // Replace the files in place, as the kubelet's rotation does (rename over).
                try FileManager.default.removeItem(atPath: cluster.pki.client.certificate)
                try FileManager.default.copyItem(atPath: rotated.certificate, toPath: cluster.pki.client.certificate)
                try FileManager.default.removeItem(atPath: cluster.pki.client.key)
                try FileManager.default.copyItem(atPath: rotated.key, toPath: cluster.pki.client.key)
                cluster.server.dropWatches(.midLine)
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.requests.contains { $0.clientCommonName == "system:node:\(CapturedPods.nodeName)-rotated" } })
                #expect(await waitUntil(every: .milliseconds(20)) { source.currentSnapshot().synced })
            }
        }
    }
}
