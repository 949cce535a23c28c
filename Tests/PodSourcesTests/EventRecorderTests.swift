import Foundation
import KubeTestServer
@testable import PodSources
import ReaperCore
import Testing
import TestSupport

/// The Event recorder's series and queue against the test server, on a
/// clock the test sets (`record(_:at:)`, `sweep(now:)`).
@Suite("EventRecorder against the test server")
struct EventRecorderTests {
    static let event = ClusterEvent(
        .normal, regarding: .pod(namespace: "scraper", name: "e2e-failjob-64h4g", uid: TestCluster.failJob),
        reason: "VolumeReaped", action: "Reap", note: "reaped emptyDir scratch of pod scraper/e2e-failjob-64h4g (4.0 KiB, idle 3h)"
    )

    /// Runs the recorder's writer while `body` runs.
    static func writing<T: Sendable>(_ recorder: EventRecorder, _ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await recorder.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    @Test("a series as client-go keeps it: PATCH at the first repeat, later repeats at the refresh and at the series' end, then a new Event")
    func seriesLifecycle() async throws {
        try await TestCluster.with { cluster in
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            let recorder = source.eventRecorder(seriesWindow: 60, refreshInterval: 30)
            let server = cluster.server
            let start = Date()
            func at(_ seconds: TimeInterval) -> Date { start.addingTimeInterval(seconds) }
            try await Self.writing(recorder) {
                recorder.record(Self.event, at: at(0))
                #expect(await waitUntil(timeout: 5) { server.clusterEvents.count == 1 })
                recorder.record(Self.event, at: at(1))
                #expect(await waitUntil(timeout: 5) { server.clusterEvents.first?.seriesCount == 2 })
                // Counted here, not written: no request per repeat.
                recorder.record(Self.event, at: at(2))
                recorder.record(Self.event, at: at(3))
                recorder.sweep(now: at(10))
                try await Task.sleep(for: .milliseconds(300))
                #expect(server.clusterEvents.first?.seriesCount == 2 && server.clusterEvents.first?.patches == 1)
                // The refresh writes the count.
                recorder.sweep(now: at(31))
                #expect(await waitUntil(timeout: 5) { server.clusterEvents.first?.seriesCount == 4 })
                // The series ends 60 s after its last repeat: the final count is written.
                recorder.record(Self.event, at: at(40))
                recorder.sweep(now: at(101))
                #expect(await waitUntil(timeout: 5) { server.clusterEvents.first?.seriesCount == 5 })
                // After its end the same reap is a new Event.
                recorder.record(Self.event, at: at(102))
                #expect(await waitUntil(timeout: 5) { server.clusterEvents.count == 2 })
                let events = server.clusterEvents
                #expect(events.map(\.creates) == [1, 1] && events.map(\.patches) == [3, 0])
                #expect(events[1].seriesCount == nil && events[1].name != events[0].name)
                // Counted once the server's answer is back, which is after the
                // server has stored the Event: wait for it, do not race it.
                #expect(
                    await waitUntil(timeout: 5) { recorder.counts == EventRecorder.Counts(sent: 5, dropped: 0, failed: 0) },
                    "\(recorder.counts)"
                )
            }
            // The source's run() would shut its client down; it never ran.
            await source.connection.shutdown()
        }
    }

    @Test("record never waits: with no writer running, 300 Events queue 256 and drop 44, counted; the writer then sends the 256")
    func boundedQueue() async throws {
        try await TestCluster.with { cluster in
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            let recorder = source.eventRecorder()
            let started = ContinuousClock.now
            for index in 0..<300 {
                var event = Self.event
                event.regarding = .pod(namespace: "bench", name: "bench-\(index)", uid: nil)
                recorder.record(event)
            }
            #expect(ContinuousClock.now - started < .seconds(1))
            #expect(recorder.counts.dropped == 300 - EventRecorder.queueLimit)
            try await Self.writing(recorder) {
                #expect(await waitUntil(timeout: 30) { recorder.counts.sent == EventRecorder.queueLimit }, "\(recorder.counts)")
            }
            #expect(cluster.server.clusterEvents.count == EventRecorder.queueLimit)
            #expect(cluster.server.clusterEvents.allSatisfy { $0.regarding["uid"] == nil && $0.regarding["kind"] == "Pod" })
            await source.connection.shutdown()
        }
    }
}
