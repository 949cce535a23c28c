import Foundation
import Testing
import TestSupport

/// The metrics listener (`metrics.listen`), the node_exporter textfile
/// (`metrics.textfile`), against the real daemon, curl over TCP and Debian's
/// promtool. The alert rules have their own suite (AlertRulesTests).
@Suite("metrics listener and textfile", .serialized)
struct MetricsListenerTests {
    static let promtool = "/usr/bin/promtool"

    /// A loopback port nobody listens on right now.
    static func freePort() throws -> Int {
        let result = try ChildProcess.run("/usr/bin/python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        return try #require(Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    static func http(_ url: String, method: String = "GET") throws -> (status: Int, body: String) {
        let result = try ChildProcess.run("/usr/bin/curl", ["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "20", "-X", method, url])
        var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.popLast() ?? "") ?? 0
        return (status, lines.joined(separator: "\n"))
    }

    @Test("the daemon serves /metrics and /healthz only on metrics.listen, writes the textfile, and promtool accepts both")
    func listenerAndTextfile() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let port = try Self.freePort()
        let textfileDirectory = node.directory.appending("textfile_collector")
        try FileManager.default.createDirectory(atPath: textfileDirectory, withIntermediateDirectories: true)
        let textfile = textfileDirectory + "/volume_reaper.prom"
        let config = node.directory.appending("config.yaml")
        try """
            kubeletRoot: \(node.kubeletRoot)
            cgroupRoot: \(node.cgroupRoot)
            manifests: \(node.manifests)
            policy: \(TestPolicies.singleSnapshot)
            stateDir: \(node.directory.appending("state"))
            socket: \(node.directory.appending("run/api.sock"))
            reconcileInterval: 2s
            logTarget: stderr
            metrics:
              listen: 127.0.0.1:\(port)
              textfile: \(textfile)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try BackgroundProcess(PackagePaths.binary, ["run", "--plan", "--config", config], log: node.directory.appending("daemon.log"))
        defer { daemon.stop() }
        let base = "http://127.0.0.1:\(port)"
        let up = try eventually(timeout: 60) { try Self.http(base + "/healthz").status == 200 }
        #expect(up, "no healthy /healthz on \(base); log:\n\(daemon.log)")

        let metrics = try Self.http(base + "/metrics")
        #expect(metrics.status == 200)
        for series in [
            "volume_reaper_volumes{state=\"idle\"}", "volume_reaper_reclaimable_bytes", "volume_reaper_kept_bytes{reason=\"mounted\"}",
            "volume_reaper_oldest_idle_volume_seconds", "volume_reaper_pod_view_age_seconds",
            "volume_reaper_plan_alerts{code=\"limit-orphan-fraction\"} 0", "volume_reaper_polled_volumes 0",
            "volume_reaper_reconcile_errors_total 0", "volume_reaper_last_reconcile_failed 0",
        ] {
            #expect(metrics.body.contains(series), "missing \(series)")
        }
        // The example node has idle volumes: something is reclaimable, and the oldest is days idle.
        let reclaimable = metrics.body.split(separator: "\n").first { $0.hasPrefix("volume_reaper_reclaimable_bytes ") }
        #expect((reclaimable?.split(separator: " ").last.flatMap { Double($0) } ?? 0) > 0)

        // Read-only: nothing but the two scrape paths.
        #expect(try Self.http(base + "/v1/plan").status == 404)
        #expect(try Self.http(base + "/v1/volumes").status == 404)
        #expect(try Self.http(base + "/v1/reconcile", method: "POST").status == 404)
        #expect(try Self.http(base + "/metrics", method: "POST").status == 405)

        // The textfile: written after the cycle, no temporary left beside it.
        #expect(eventually(timeout: 20) { FileManager.default.fileExists(atPath: textfile) })
        let written = try String(contentsOfFile: textfile, encoding: .utf8)
        #expect(written.contains("volume_reaper_reclaimable_bytes"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: textfileDirectory) == ["volume_reaper.prom"])

        let exposition = node.directory.appending("exposition.prom")
        try metrics.body.write(toFile: exposition, atomically: true, encoding: .utf8)
        for file in [exposition, textfile] {
            let check = try ChildProcess.shell("\(Self.promtool) check metrics < \(file)")
            #expect(check.status == 0, "promtool check metrics \(file): \(check.stdout)\(check.stderr)")
        }
    }

    @Test("a bad metrics.listen is refused in one line naming the key")
    func badListen() throws {
        let directory = try TemporaryDirectory("metrics-config")
        defer { directory.remove() }
        let config = directory.appending("config.yaml")
        try "metrics:\n  listen: \"localhost:99999\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(PackagePaths.binary, ["--plan", "--config", config, "--kubelet-root", directory.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("metrics.listen: must be [HOST]:PORT"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}
