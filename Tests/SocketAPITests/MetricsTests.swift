import Foundation
import Prometheus
import ReaperCore
import SocketAPI
import Testing
import TestSupport

@Suite("Agent metrics")
struct MetricsTests {
    @Test("The recorder writes every volume_reaper_ series into the registry")
    func recorder() {
        let registry = PrometheusCollectorRegistry()
        let recorder = AgentMetricsRecorder(registry: registry)
        recorder.recordPlan(Fixture.plan)
        recorder.recordWatcher(watches: 7, events: 10, overflows: 1)
        recorder.recordWatcher(watches: 9, events: 25, overflows: 1)
        recorder.recordReaps(count: 2, bytes: 4096)
        recorder.recordReaps(count: 1, bytes: 1024)
        recorder.recordReconcile(duration: .milliseconds(300), at: Date(timeIntervalSince1970: 1_795_000_000))
        recorder.recordHTTPRequest(status: 200)
        let text = registry.emitToString()
        for line in [
            #"volume_reaper_volumes{state="idle"} 1"#,
            #"volume_reaper_volumes{state="active"} 2"#,
            "volume_reaper_watches 9",
            "volume_reaper_events_total 25",
            "volume_reaper_overflows_total 1",
            "volume_reaper_reaps_total 3",
            "volume_reaper_bytes_freed_total 5120",
            "volume_reaper_reconcile_duration_seconds_count 1",
            #"volume_reaper_reconcile_duration_seconds_bucket{le="0.5"} 1"#,
            "volume_reaper_last_reconcile_timestamp_seconds 1795000000",
            #"volume_reaper_http_requests_total{code="200"} 1"#,
            #"volume_reaper_info{version="\#(VolumeReaperVersion.current)"} 1"#,
        ] {
            #expect(text.contains(line), "missing \(line) in:\n\(text)")
        }
    }

    @Test("Watcher totals that go down (a restarted watcher) count from zero again")
    func watcherRestart() {
        let registry = PrometheusCollectorRegistry()
        let recorder = AgentMetricsRecorder(registry: registry)
        recorder.recordWatcher(watches: 1, events: 100, overflows: 2)
        recorder.recordWatcher(watches: 1, events: 5, overflows: 0)
        let text = registry.emitToString()
        #expect(text.contains("volume_reaper_events_total 105"))
        #expect(text.contains("volume_reaper_overflows_total 2"))
    }
}

@Suite("Fleet metrics and the TCP listener")
struct FleetMetricsTests {
    @Test("reclaimable and kept bytes, the oldest idle volume, the pod view's age, alerts; a reason that went is zeroed")
    func planSeries() {
        let registry = PrometheusCollectorRegistry()
        let recorder = AgentMetricsRecorder(registry: registry)
        var plan = Fixture.plan
        plan.manifests.refreshedAt = Fixture.generatedAt.addingTimeInterval(-90)
        plan.alerts = [PlanAlert(code: .limitOrphanFraction, message: "tripped")]
        recorder.recordPlan(plan)
        recorder.recordReconcileFailure(true)
        recorder.recordWatcher(watches: 3, events: 0, overflows: 0, polledVolumes: 2)
        var text = registry.emitToString()
        for line in [
            "volume_reaper_reclaimable_bytes 8192", #"volume_reaper_kept_bytes{reason="recent-access"} 16384"#,
            "volume_reaper_oldest_idle_volume_seconds 7200", "volume_reaper_pod_view_age_seconds 90",
            #"volume_reaper_plan_alerts{code="limit-orphan-fraction"} 1"#, "volume_reaper_polled_volumes 2",
            "volume_reaper_reconcile_errors_total 1", "volume_reaper_last_reconcile_failed 1",
        ] {
            #expect(text.contains(line), "missing \(line) in:\n\(text)")
        }
        // Next cycle: nothing kept for recent-access, no alert, no view.
        plan.volumes = plan.volumes.map { volume in
            var volume = volume
            if volume.verdict == .keep { volume.reasons = [.mounted] }
            return volume
        }
        plan.alerts = []
        plan.manifests.refreshedAt = nil
        recorder.recordPlan(plan)
        recorder.recordReconcileFailure(false)
        text = registry.emitToString()
        for line in [
            #"volume_reaper_kept_bytes{reason="recent-access"} 0"#, #"volume_reaper_kept_bytes{reason="mounted"} 16384"#,
            #"volume_reaper_plan_alerts{code="limit-orphan-fraction"} 0"#, "volume_reaper_pod_view_age_seconds 1795000000",
            "volume_reaper_reconcile_errors_total 1", "volume_reaper_last_reconcile_failed 0",
        ] {
            #expect(text.contains(line), "missing \(line) in:\n\(text)")
        }
    }

    @Test("the TCP listener answers /metrics and /healthz only, with the socket API's header limit")
    func tcpListener() async throws {
        let port = Int.random(in: 20_000...40_000)
        let address = try #require(TCPListenAddress("127.0.0.1:\(port)"))
        let registry = PrometheusCollectorRegistry()
        AgentMetricsRecorder(registry: registry).recordPlan(Fixture.plan)
        let server = try APIServer(configuration: .metricsListener(address), provider: FakeProvider(), registry: registry, logger: quietLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            #expect(await server.waitUntilListening())
            func get(_ path: String, method: String = "GET", header: String? = nil) async throws -> Int {
                var arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-X", method]
                if let header { arguments += ["-H", header] }
                arguments.append("http://127.0.0.1:\(port)\(path)")
                let args = arguments
                return Int(try await onThread { try ChildProcess.run("/usr/bin/curl", args) }.stdout) ?? 0
            }
            #expect(try await get("/metrics") == 200)
            #expect(try await get("/healthz") == 200)
            #expect(try await get("/v1/plan") == 404)
            #expect(try await get("/v1/volumes/\(Fixture.podA)") == 404)
            #expect(try await get("/v1/reconcile", method: "POST") == 404)
            #expect(try await get("/metrics", method: "DELETE") == 405)
            #expect(try await get("/metrics", header: "X-Big: " + String(repeating: "a", count: 20_000)) == 431)
            group.cancelAll()
            try await group.waitForAll()
        }
    }
}
