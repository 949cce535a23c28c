import Foundation
import KubeTestServer
import NIOCore
@testable import PodSources
import ReaperCore
import Testing
import TestSupport

/// Issue 20: what a fleet of agents costs the API server. No periodic
/// relist while bookmarks flow, a streaming list (WatchList) where the server
/// has one and LIST where it refuses, and a fleet that starts together
/// spreads its first requests.
@Suite("A fleet costs the API server little: no relist while healthy, WatchList, jitter")
struct FleetCostTests {
    /// The accelerated clock of these tests: watches of 1 s (the default
    /// asks 300 to 600 s) and a BOOKMARK every 0.2 s (the watch cache sends
    /// one about every minute); bookmarks that stop count after 2 s. 12 s of
    /// this is 3,600 s at the default 300 s watch timeout (×300): an hour of
    /// watches, each followed by the next.
    static func acceleratedSettings(_ cluster: TestCluster, watchList: Bool) -> PodSourceSettings {
        var settings = cluster.settings
        settings.watchList = watchList
        settings.watchTimeout = 1
        settings.bookmarkTimeout = 2
        settings.stallTimeout = 5
        return settings
    }

    /// The daemon's way (a streaming list first), with long watches: one
    /// watch per test unless the test cuts it.
    static func streamingSettings(_ cluster: TestCluster, stallTimeout: TimeInterval = 60) -> PodSourceSettings {
        var settings = cluster.settings
        settings.watchList = true
        settings.stallTimeout = stallTimeout
        settings.watchTimeout = 60
        return settings
    }

    static func isStreamingList(_ request: KubeTestServer.RecordedRequest) -> Bool {
        request.kind == .watch && request.query["sendInitialEvents"] == "true"
    }

    @Test("a healthy hour (accelerated ×300): one list at the start (a streaming list, or a LIST where refused), then only watches from the resourceVersion; the view stays synced and fresh",
          arguments: [true, false])
    func healthyHour(watchList: Bool) async throws {
        try await TestCluster.with { cluster in
            cluster.server.setAutomaticBookmarks(every: .milliseconds(200))
            let settings = Self.acceleratedSettings(cluster, watchList: watchList)
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { source.currentSnapshot().synced })
                try await Task.sleep(for: .seconds(12))
                let requests = cluster.server.requests
                let lists = requests.filter { $0.kind == .list }.count
                let streaming = requests.filter(Self.isStreamingList).count
                let watches = requests.filter { $0.kind == .watch && !Self.isStreamingList($0) }
                #expect(lists + streaming == 1, "\(lists) LISTs and \(streaming) streaming lists in an accelerated hour")
                #expect(watchList ? streaming == 1 : lists == 1)
                // Each watch ran its 1 to 2 s and was followed by the next at once.
                #expect(watches.count >= 5, "\(watches.count) watches")
                #expect(watches.allSatisfy { $0.query["resourceVersion"]?.isEmpty == false && $0.query["allowWatchBookmarks"] == "true" })
                let snapshot = source.currentSnapshot()
                #expect(snapshot.synced && snapshot.isComplete)
                let refreshed = try #require(snapshot.refreshedAt)
                #expect(Date().timeIntervalSince(refreshed) < 2 + settings.bookmarkMargin, "the bookmarks keep the view fresh")
            }
        }
    }

    @Test("a server that sends no BOOKMARK is relisted after bookmarkTimeout (what resyncInterval did), paced, and the view stays synced")
    func noBookmarks() async throws {
        try await TestCluster.with { cluster in
            var settings = cluster.settings
            settings.watchTimeout = 60
            settings.stallTimeout = 60
            settings.bookmarkTimeout = 1
            settings.maxBackoff = 1
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.listCount >= 3 })
                #expect(source.currentSnapshot().synced)
                #expect(source.status().failures.isEmpty, "bookmarks that stop are not a failure: \(source.status().failures)")
            }
            // 1 s of silence, then a wait of at least 0.8 s: never a spin.
            #expect(cluster.server.listCount <= 4)
        }
    }

    @Test("WatchList: the first request streams the node's pods (sendInitialEvents, NotOlderThan, bookmarks); the view is replaced only when the initial-events-end BOOKMARK arrives; no LIST")
    func watchListStart() async throws {
        try await TestCluster.with { cluster in
            let settings = Self.streamingSettings(cluster)
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            // Held: the stream's head goes out, its events do not.
            cluster.server.stall()
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 })
                let first = try #require(cluster.server.requests.first)
                #expect(Self.isStreamingList(first))
                #expect(first.query["resourceVersionMatch"] == "NotOlderThan" && first.query["allowWatchBookmarks"] == "true")
                #expect(first.query["resourceVersion"] == nil, "no resourceVersion: the newest state, a consistent read")
                #expect(first.query["fieldSelector"] == "spec.nodeName=\(CapturedPods.nodeName)")
                try await Task.sleep(for: .milliseconds(300))
                #expect(!source.currentSnapshot().synced && source.currentSnapshot().pods.isEmpty, "vouched before the end bookmark")
                cluster.server.releaseStall()
                #expect(await waitUntil(every: .milliseconds(20)) { source.currentSnapshot().synced })
                let snapshot = source.currentSnapshot()
                #expect(Set(snapshot.pods.map(\.uid)).isSuperset(of: [TestCluster.metricsServer, TestCluster.failJob]))
                #expect(snapshot.resourceVersion == String(cluster.server.resourceVersion))
                #expect(snapshot.isComplete && snapshot.errors.isEmpty)
                // The same stream goes on as the watch.
                try cluster.server.setPhase(uid: TestCluster.metricsServer, "Succeeded", terminateContainers: false)
                #expect(await waitUntil(every: .milliseconds(20)) {
                    source.currentSnapshot().pods.first { $0.uid == TestCluster.metricsServer }?.phase == "Succeeded"
                })
                #expect(cluster.server.listCount == 0 && cluster.server.watchCount == 1)
                #expect(!source.usesListFallback)
            }
        }
    }

    @Test("a server without WatchList refuses the streaming list with its 422; the source LISTs at once, watches from the list, and never asks for a streaming list again")
    func watchListFallback() async throws {
        try await TestCluster.with { cluster in
            cluster.server.setWatchListSupported(false)
            let settings = Self.streamingSettings(cluster)
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 && source.currentSnapshot().synced })
                let requests = cluster.server.requests
                #expect(requests.map(\.kind) == [.watch, .list, .watch])
                #expect(Self.isStreamingList(requests[0]) && requests[0].status == 422)
                #expect(requests[2].query["resourceVersion"] == source.currentSnapshot().resourceVersion)
                #expect(source.usesListFallback)
                #expect(source.status().failures.isEmpty, "a refusal is an answer, not a failure: \(source.status().failures)")
                // A 410 relists with LIST, not with another streaming list.
                cluster.server.expireHistory()
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.listCount == 2 && source.currentSnapshot().synced })
                #expect(cluster.server.requests.filter(Self.isStreamingList).count == 1)
            }
        }
    }

    @Test("the test server answers streaming-list parameters as the apiserver validates them: 422 Invalid with its wording, read by the agent's client",
          arguments: [
              ("watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true", false,
               "is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"),
              ("watch=true&sendInitialEvents=true&allowWatchBookmarks=true", true,
               "is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"),
              ("sendInitialEvents=true", true, "is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"),
              ("watch=true&resourceVersionMatch=NotOlderThan", true,
               "is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"),
          ])
    func refusalWording(_ query: String, _ watchList: Bool, _ wording: String) async throws {
        try await TestCluster.with { cluster in
            cluster.server.setWatchListSupported(watchList)
            let connection = ClusterConnection(settings: cluster.settings, logger: TestCluster.logger)
            do throws(PodSourceError) {
                let target = try connection.target()
                _ = try await target.endpoint.get("/api/v1/pods?" + query, deadline: .now() + .seconds(5))
                Issue.record("\(query): served")
            } catch {
                #expect(error.kind == .refused, "\(error.message)")
                #expect(error.message.contains("HTTP 422: ListOptions.meta.k8s.io"), "\(error.message)")
                #expect(error.message.contains(wording), "\(error.message)")
            }
            await connection.shutdown()
        }
    }

    @Test("a watch cut resumes from its resourceVersion with no LIST; after a restart with a compacted history (410) exactly one list")
    func cutAndRestart() async throws {
        try await TestCluster.with { cluster in
            cluster.server.setAutomaticBookmarks(every: .milliseconds(200))
            let settings = Self.streamingSettings(cluster, stallTimeout: 5)
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 && source.currentSnapshot().synced })
                func lists() -> Int { cluster.server.listCount + cluster.server.requests.filter(Self.isStreamingList).count }
                for mode in [KubeTestServer.DropMode.atLineBoundary, .midLine, .endOfStream] {
                    let watches = cluster.server.watchCount
                    cluster.server.dropWatches(mode)
                    #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.watchCount > watches && source.currentSnapshot().synced })
                }
                cluster.server.restart(compacted: false)
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 && source.currentSnapshot().synced })
                #expect(lists() == 1, "a cut or a restart that kept the history relisted")
                cluster.server.restart(compacted: true)
                #expect(await waitUntil(every: .milliseconds(20)) { lists() == 2 && source.currentSnapshot().synced })
                try await Task.sleep(for: .seconds(2))
                #expect(lists() == 2)
                #expect(source.currentSnapshot().resourceVersion.flatMap(Int.init) ?? 0 >= cluster.server.resourceVersion)
            }
        }
    }

    @Test("the first request waits a random time within startupSpread: uniform over the window, never past it")
    func startupDelays() {
        let spread = 30.0
        let delays = (0..<2000).map { _ in APIServerPodSource.startupDelay(spread: spread) }
        #expect(delays.allSatisfy { $0 >= .zero && $0 <= .seconds(30) })
        // Each sixth of the window holds about a sixth of the draws (333; a
        // uniform draw puts fewer than 250 there with odds below 1e-6).
        for sixth in 0..<6 {
            let low = Duration.seconds(5 * sixth), high = Duration.seconds(5 * (sixth + 1))
            let count = delays.count { $0 >= low && $0 < high }
            #expect(count > 250, "\(count) of 2000 in [\(low), \(high))")
        }
        #expect(APIServerPodSource.startupDelay(spread: 0) == .zero)
    }

    @Test("eight agents started together: their first requests spread over startupSpread, not in one burst")
    func fleetStart() async throws {
        try await TestCluster.with { cluster in
            var settings = Self.streamingSettings(cluster)
            settings.startupSpread = 2
            let sources = (0..<8).map { _ in APIServerPodSource(settings: settings, logger: TestCluster.logger) }
            let started = DispatchTime.now().uptimeNanoseconds
            await withThrowingTaskGroup(of: Void.self) { group in
                for source in sources { group.addTask { try await source.run() } }
                defer { group.cancelAll() }
                #expect(await waitUntil(timeout: 10, every: .milliseconds(20)) { cluster.server.requests.count >= 8 })
            }
            let offsets = cluster.server.requests.prefix(8).map { Double($0.uptimeNanoseconds - started) / 1e9 }
            let spread = (offsets.max() ?? 0) - (offsets.min() ?? 0)
            // Eight uniform draws over 2 s lie within 0.25 s of each other
            // with odds below 1e-5. Each offset also carries the credentials'
            // load and the TLS handshake, seconds on a loaded machine, so
            // "never past the window" is shown by the draws themselves
            // (startupDelays); here the spread may not exceed it by much.
            #expect(spread > 0.25, "\(offsets)")
            #expect(spread < 2 + 2, "\(offsets)")
        }
    }
}

