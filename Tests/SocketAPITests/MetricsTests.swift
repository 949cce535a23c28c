import Foundation
import Prometheus
import ReaperCore
import SocketAPI
import Testing

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
