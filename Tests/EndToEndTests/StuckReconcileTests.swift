import Foundation
import Testing
import TestSupport

/// A reconcile that does not end (here: another process holds the access
/// store's write lock, as a stuck backup or a curious `sqlite3` would) makes
/// the daemon say so: `/healthz` 503 `stuck`, `status` exits 1, and a
/// request for a cycle gets a prompt 503 rather than silence.
@Suite("volume-reaper run: a stuck reconcile", .serialized)
struct StuckReconcileTests {
    @Test("a cycle past reconcileStuckAfter: /healthz says stuck, POST /v1/reconcile answers 503 at once, then recovery")
    func stuckCycle() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let state = node.directory.appending("state")
        let socket = node.directory.appending("run/api.sock")
        let config = node.directory.appending("config.yaml")
        try """
            kubeletRoot: \(node.kubeletRoot)
            cgroupRoot: \(node.cgroupRoot)
            manifests: \(node.manifests)
            policy: \(PackagePaths.root.appendingPathComponent("policies/default.yaml").path)
            stateDir: \(state)
            socket: \(socket)
            reconcileInterval: 1s
            flushInterval: 500ms
            reconcileStuckAfter: 2s
            logTarget: stderr
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try BackgroundProcess(PackagePaths.binary, ["run", "--plan", "--config", config], log: node.directory.appending("daemon.log"))
        defer { daemon.stop(signal: SIGKILL) }
        try #require(try eventually(timeout: 60) { try curl(socket, "/healthz").status == 200 }, "\(daemon.log)")

        // Hold the store's write lock for 6 s: every cycle's first write waits.
        let holder = try BackgroundProcess("/usr/bin/python3", [
            "-c", "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None,timeout=30)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\ntime.sleep(6)",
            state + "/access.sqlite",
        ], log: node.directory.appending("holder.log"))
        defer { holder.stop(signal: SIGKILL) }
        try #require(eventually(timeout: 10) { holder.log.contains("locked") }, "\(holder.log)")

        var health = (status: 0, body: "")
        #expect(try eventually(timeout: 5) {
            health = try curl(socket, "/healthz")
            return health.status == 503 && health.body.contains("\"stuck\"")
        }, "\(health)")
        #expect(health.body.contains("reconcileRunningSince"))

        let asked = Date()
        let reconcile = try curl(socket, "/v1/reconcile", method: "POST")
        #expect(Date().timeIntervalSince(asked) < 2)
        #expect(reconcile.status == 503)
        #expect(reconcile.body.contains("reconcile-stuck"), "\(reconcile.body)")

        let status = try ChildProcess.run(PackagePaths.binary, ["status", "--socket", socket])
        #expect(status.status == 1)
        #expect(status.stdout.contains("stuck"), "\(status.stdout)")

        // The lock goes away: the cycle ends and the daemon is healthy again.
        holder.stop()
        #expect(try eventually(timeout: 30) { try curl(socket, "/healthz").status == 200 }, "\(daemon.log)")
    }
}
