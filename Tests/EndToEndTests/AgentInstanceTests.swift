import Foundation
import ReaperCore
import Testing
import TestSupport

/// One agent per state directory (issue 19, gap 9), the `process_*` and
/// `volume_reaper_dry_run` series (gap 6) and the drop-ins that switch modes
/// (gap 8), against real child daemons.
@Suite("one agent per state directory, process metrics, drop-ins", .serialized)
struct AgentInstanceTests {
    func writeConfig(_ path: String, node: ExampleNode, socket: String, extra: String = "") throws {
        try """
            kubeletRoot: \(node.kubeletRoot)
            manifests: \(node.manifests)
            policy: \(TestPolicies.singleSnapshot)
            stateDir: \(node.directory.appending("state"))
            socket: \(socket)
            reconcileInterval: 1s
            flushInterval: 500ms
            logTarget: stderr
            \(extra)
            """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func idleSeconds(_ socket: String, _ path: String) throws -> Int? {
        let (status, body) = try curl(socket, "/v1/plan")
        guard status == 200 else { return nil }
        return try Plan.decoder().decode(Plan.self, from: Data(body.utf8)).volumes.first { $0.path == path }?.idleSeconds
    }

    @Test("a second run on the same state directory, on another socket, is refused in one line naming the directory and the first's pid; the first keeps its clocks")
    func secondAgentRefused() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let first = node.directory.appending("first.yaml")
        let firstSocket = node.directory.appending("run/first.sock")
        try writeConfig(first, node: node, socket: firstSocket)
        let daemon = try BackgroundProcess(PackagePaths.binary, ["run", "--plan", "--config", first], log: node.directory.appending("first.log"))
        defer { daemon.stop(signal: SIGKILL) }
        #expect(try eventually(timeout: 60) { try curl(firstSocket, "/healthz").status == 200 }, "\(daemon.log)")
        let reap = try #require(node.expectations.first { $0.verdict == "reap" })
        let idleBefore = try #require(try idleSeconds(firstSocket, reap.path))
        #expect(idleBefore > 60)

        let second = node.directory.appending("second.yaml")
        let secondSocket = node.directory.appending("run/second.sock")
        try writeConfig(second, node: node, socket: secondSocket)
        let refused = try ChildProcess.run(PackagePaths.binary, ["run", "--plan", "--config", second])
        #expect(refused.status == 1)
        let lines = refused.stderr.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count == 1, "\(refused.stderr)")
        let line = String(lines.first ?? "")
        #expect(line.contains("state directory \(node.directory.appending("state")) is in use"), "\(line)")
        #expect(line.contains("pid \(daemon.pid)"), "\(line)")
        #expect(!FileManager.default.fileExists(atPath: secondSocket), "the refused agent must not have bound its socket")
        let lock = try String(contentsOfFile: node.directory.appending("state/agent.lock"), encoding: .utf8)
        #expect(lock == "\(daemon.pid)\n")

        // The first agent's idle clocks went on (the second began no session).
        #expect(try eventually(timeout: 10) { (try idleSeconds(firstSocket, reap.path) ?? 0) >= idleBefore }, "idle went back")
        #expect(try curl(firstSocket, "/healthz").status == 200)

        // Once the first stops, the directory is free again.
        #expect(daemon.stop() == 0)
        let next = try BackgroundProcess(PackagePaths.binary, ["run", "--plan", "--config", second], log: node.directory.appending("next.log"))
        defer { next.stop(signal: SIGKILL) }
        #expect(try eventually(timeout: 60) { try curl(secondSocket, "/healthz").status == 200 }, "\(next.log)")
    }

    /// The value of an unlabelled series in an exposition.
    func value(_ exposition: String, _ name: String) -> Double? {
        exposition.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test("process_* series from /proc/self and volume_reaper_dry_run, scraped over metrics.listen; a drop-in plus SIGHUP turns reap mode on")
    func processSeriesAndDryRunGauge() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let port = try MetricsListenerTests.freePort()
        let config = node.directory.appending("config.yaml")
        let socket = node.directory.appending("run/api.sock")
        try writeConfig(config, node: node, socket: socket, extra: "dryRun: true\nmetrics:\n  listen: 127.0.0.1:\(port)")
        let started = Date().timeIntervalSince1970
        let daemon = try BackgroundProcess(PackagePaths.binary, ["run", "--config", config], log: node.directory.appending("daemon.log"))
        defer { daemon.stop(signal: SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        #expect(try eventually(timeout: 60) { try MetricsListenerTests.http(base + "/readyz").status == 200 }, "\(daemon.log)")
        #expect(try MetricsListenerTests.http(base + "/livez").status == 200)

        let metrics = try MetricsListenerTests.http(base + "/metrics").body
        let resident = try #require(value(metrics, "process_resident_memory_bytes"))
        #expect(resident > Double(1 << 20) && resident < Double(4 << 30), "\(resident)")
        let virtual = try #require(value(metrics, "process_virtual_memory_bytes"))
        #expect(virtual >= resident)
        let open = try #require(value(metrics, "process_open_fds"))
        let maxFDs = try #require(value(metrics, "process_max_fds"))
        #expect(open > 3 && open < maxFDs, "open \(open), max \(maxFDs)")
        // What the kernel says of the child: its fd directory.
        let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/fd").count
        #expect(abs(Double(fds) - open) < 16, "process_open_fds \(open), /proc/\(daemon.pid)/fd has \(fds)")
        let start = try #require(value(metrics, "process_start_time_seconds"))
        #expect(abs(start - started) < 30, "start \(start), launched at \(started)")
        let cpu = try #require(value(metrics, "process_cpu_seconds_total"))
        #expect(cpu > 0)
        #expect(metrics.contains("# TYPE process_cpu_seconds_total counter"))
        #expect(metrics.contains("# TYPE process_resident_memory_bytes gauge"))
        #expect(value(metrics, "volume_reaper_dry_run") == 1)
        // CPU time only grows.
        let later = try #require(value(try MetricsListenerTests.http(base + "/metrics").body, "process_cpu_seconds_total"))
        #expect(later >= cpu)

        // Reap mode is one drop-in beside the config, and a reload.
        let reap = try #require(node.expectations.first { $0.verdict == "reap" })
        #expect(FileManager.default.fileExists(atPath: reap.path))
        try FileManager.default.createDirectory(atPath: node.directory.appending("config.d"), withIntermediateDirectories: true)
        try "dryRun: false\n".write(toFile: node.directory.appending("config.d/50-reap.yaml"), atomically: true, encoding: .utf8)
        #expect(kill(daemon.pid, SIGHUP) == 0)
        #expect(try eventually(timeout: 30) { value(try MetricsListenerTests.http(base + "/metrics").body, "volume_reaper_dry_run") == 0 }, "\(daemon.log)")
        #expect(eventually(timeout: 30) { !FileManager.default.fileExists(atPath: reap.path) }, "reap mode did not reap \(reap.path)")
    }
}
