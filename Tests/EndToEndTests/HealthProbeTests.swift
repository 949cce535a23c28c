import Foundation
import Testing
import TestSupport

/// Issue 19, defect 2: liveness is the process and its cycles, readiness a
/// synced pod view among the rest. An API server outage must show through
/// `/readyz` and `volume_reaper_pod_source_synced`, never fail `/livez` (the
/// kubelet would restart every agent of the fleet at once).
@Suite("/livez and /readyz", .serialized)
struct HealthProbeTests {
    /// The window a liveness probe allows: `reconcileStuckAfter` here.
    static let livenessWindow: TimeInterval = 2

    static func decode(_ body: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
    }

    @Test("the API server stops for longer than the liveness window: /livez stays 200, /readyz turns 503, on the socket and on metrics.listen")
    func apiServerOutage() async throws {
        let port = try MetricsListenerTests.freePort()
        let running = try await PodSourceDaemonTests.start(dryRun: true, extraConfig: """
            reconcileStuckAfter: \(Int(Self.livenessWindow))s
            metrics:
              listen: 127.0.0.1:\(port)
            """)
        defer {
            running.daemon.stop(signal: SIGKILL)
            running.pki.remove()
            running.directory.remove()
        }
        let tcp = "http://127.0.0.1:\(port)"
        // Synced: both 200, on both listeners.
        #expect(await waitUntil(timeout: 20) { (try? curl(running.socket, "/readyz"))?.status == 200 }, "log:\n\(running.daemon.log)")
        for path in ["/livez", "/readyz", "/healthz"] {
            #expect(try curl(running.socket, path).status == 200, "\(path) on the socket")
            #expect(try MetricsListenerTests.http(tcp + path).status == 200, "\(path) on metrics.listen")
        }
        let ready = Self.decode(try curl(running.socket, "/readyz").body)
        #expect(ready["ok"] as? Bool == true)
        let names = (ready["checks"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(names.contains("pod-source-synced") && names.contains("live"), "\(names)")
        #expect(try MetricsListenerTests.http(tcp + "/metrics").body.contains("volume_reaper_pod_source_synced{source=\"apiserver\"} 1"))

        await running.server.stop()
        let stopped = Date()
        // Readiness turns 503 once the source fails...
        #expect(await waitUntil(timeout: 20) { (try? curl(running.socket, "/readyz"))?.status == 503 }, "log:\n\(running.daemon.log)")
        // ...while liveness stays 200 throughout, well past the window.
        var livez: [Int] = []
        while Date().timeIntervalSince(stopped) < 3 * Self.livenessWindow + 1 {
            livez.append(try curl(running.socket, "/livez").status)
            livez.append(try MetricsListenerTests.http(tcp + "/livez").status)
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(livez.allSatisfy { $0 == 200 }, "\(livez)")
        #expect(try MetricsListenerTests.http(tcp + "/readyz").status == 503)

        let notReady = try curl(running.socket, "/readyz")
        #expect(notReady.status == 503)
        let checks = Self.decode(notReady.body)["checks"] as? [[String: Any]] ?? []
        let source = try #require(checks.first { $0["name"] as? String == "pod-source-synced" })
        #expect(source["ok"] as? Bool == false)
        #expect((source["message"] as? String)?.hasPrefix("pods from apiserver failing") == true, "\(source)")
        #expect(checks.first { $0["name"] as? String == "live" }?["ok"] as? Bool == true)
        // /healthz is as before: a failing network source is degraded (503).
        #expect(try curl(running.socket, "/healthz").status == 503)
        // The metric an alert watches, current at the scrape (no cycle needed).
        let metrics = try MetricsListenerTests.http(tcp + "/metrics").body
        #expect(metrics.contains("volume_reaper_pod_source_synced{source=\"apiserver\"} 0"), "\(metrics.split(separator: "\n").filter { $0.contains("pod_source_synced") })")

        // `status` shows both.
        let status = try ChildProcess.run(PackagePaths.binary, ["status", "--socket", running.socket])
        #expect(status.status == 1)
        let health = Self.decode(status.stdout)
        #expect((health["live"] as? [String: Any])?["ok"] as? Bool == true, "\(status.stdout)")
        #expect((health["ready"] as? [String: Any])?["ok"] as? Bool == false, "\(status.stdout)")
        #expect(running.daemon.process.isRunning, "the daemon must not exit: log:\n\(running.daemon.log)")
    }
}
