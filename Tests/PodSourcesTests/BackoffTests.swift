import Foundation
import KubeTestServer
@testable import PodSources
import Testing
import TestSupport

/// Issue 18, item 9: every network failure backs off (0.8 s doubling, with
/// jitter), 410 included, and a watch that ends after at most one event
/// counts as a failure. A fleet of agents must not turn a server hiccup into
/// an outage.
@Suite("Backoff: 410s and short watches do not spin")
struct BackoffTests {
    /// Requests over `seconds` with the server misbehaving as `mode` says.
    static func requests(_ mode: String, seconds: Double) async throws -> (lists: Int, watches: Int) {
        try await TestCluster.with { cluster in
            var settings = cluster.settings
            settings.maxBackoff = 30
            settings.stallTimeout = 60
            switch mode {
            case "error-event": cluster.server.setWatchMisbehavior(.expireAtOnce)
            case "watch-status": cluster.server.setFailure(410, for: [.watch])
            case "list-status": cluster.server.setFailure(410, for: [.list])
            case "bookmark-close": cluster.server.setWatchMisbehavior(.oneBookmarkThenEnd)
            default: cluster.server.setFailure(500, for: [.list])
            }
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                try await Task.sleep(for: .seconds(seconds))
            }
            return (cluster.server.listCount, cluster.server.watchCount)
        }
    }

    @Test("a 410 (ERROR event or status) and a watch closed after one BOOKMARK back off: a few requests in 4 s, not thousands",
          arguments: ["error-event", "watch-status", "list-status", "bookmark-close", "list-500"])
    func boundedRequests(_ mode: String) async throws {
        let (lists, watches) = try await Self.requests(mode, seconds: 4)
        // Waits of at least 0.8 s, 1.6 s, 3.2 s: at most 3 tries in 4 s; one spare for scheduling.
        #expect(lists + watches <= 8, "\(mode): \(lists) LISTs and \(watches) WATCHes in 4 s")
        #expect(lists <= 4 && watches <= 4, "\(mode): \(lists) LISTs and \(watches) WATCHes in 4 s")
        if mode == "bookmark-close" { #expect(lists == 1, "a watch closed cleanly re-watches, it does not relist") }
    }

    @Test("the kubelet source backs off between failed polls too (410, 500, garbage)", arguments: [410, 500, 200])
    func kubeletPolls(_ status: Int) async throws {
        try await TestCluster.with { cluster in
            var settings = AnswersThatLieTests.kubeletSettings(cluster)
            settings.maxBackoff = 30
            settings.pollInterval = 30
            if status == 200 {
                cluster.server.setGarbage(.kubeletBody)
            } else {
                cluster.server.setFailure(status, for: [.kubeletPods])
            }
            let source = KubeletPodSource(settings: settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                try await Task.sleep(for: .seconds(4))
            }
            #expect(cluster.server.kubeletPodsCount <= 4, "\(status): \(cluster.server.kubeletPodsCount) polls in 4 s")
            #expect(!source.currentSnapshot().synced)
        }
    }

    @Test("the waits: at least 0.8 s, doubling, jittered between the step and twice it; once at maxBackoff, between it and 1.25 times it")
    func waits() {
        for _ in 0..<200 {
            var backoff = Backoff(cap: 30)
            let waits = (0..<10).map { _ in backoff.next() }
            for (step, wait) in waits.enumerated() {
                let base = 0.8 * Double(1 << step)
                #expect(wait >= .milliseconds(Int64(min(base, 30) * 1000)) && wait <= .seconds(min(2 * base, 37.5)), "step \(step): \(wait)")
            }
            // Issue 20: during an outage a node asks at most once per maxBackoff.
            for wait in waits.dropFirst(6) { #expect(wait >= .seconds(30), "\(wait)") }
            var low = Backoff(cap: 0.1)
            #expect(low.next() >= .milliseconds(800), "a cap below 0.8 s must not make a spin")
        }
    }
}
