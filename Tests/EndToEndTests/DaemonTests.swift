import Foundation
import ReaperCore
import Testing
import TestSupport

/// `volume-reaper run` as a child process on the realistic example node,
/// spoken to over its socket and watched through a real NOTIFY_SOCKET.
@Suite("volume-reaper run", .serialized)
struct DaemonTests {
    /// The default policy, but one snapshot confirms an orphan (see `TestPolicies`).
    static let singleSnapshotPolicy = TestPolicies.singleSnapshot

    struct Running {
        let node: ExampleNode
        let daemon: BackgroundProcess
        let notify: NotifySocket
        let socket: String
        let state: String
        let readyMessages: [String]
        /// `/healthz` as it answered right at READY=1.
        let healthAtReady: (status: Int, body: String)
    }

    /// Starts `run --plan` (or a real run) with short intervals; waits for READY=1.
    func start(
        dryRun: Bool = true, node: ExampleNode? = nil, policy: String = DaemonTests.singleSnapshotPolicy, environment: [String: String] = [:]
    ) throws -> Running {
        let node = try node ?? ExampleNode()
        let state = node.directory.appending("state")
        let socket = node.directory.appending("run/api.sock")
        let config = node.directory.appending("config.yaml")
        try """
            kubeletRoot: \(node.kubeletRoot)
            cgroupRoot: \(node.cgroupRoot)
            manifests: \(node.manifests)
            policy: \(policy)
            stateDir: \(state)
            socket: \(socket)
            reconcileInterval: 2s
            flushInterval: 500ms
            logTarget: stderr
            """.write(toFile: config, atomically: true, encoding: .utf8)
        unlink(node.directory.appending("notify.sock"))
        let notify = try NotifySocket(path: node.directory.appending("notify.sock"))
        let daemon = try BackgroundProcess(
            PackagePaths.binary, ["run"] + (dryRun ? ["--plan"] : []) + ["--config", config],
            environment: environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 }, log: node.directory.appending("daemon.log")
        )
        guard let ready = notify.waitFor("READY=1", timeout: 60) else {
            daemon.stop(signal: SIGKILL)
            throw ExampleNodeError(message: "no READY=1 within 60s; log:\n\(daemon.log)")
        }
        let healthAtReady = try curl(socket, "/healthz")
        // The first plan follows READY=1 at once.
        guard try eventually(timeout: 60, { try curl(socket, "/healthz").status == 200 }) else {
            daemon.stop(signal: SIGKILL)
            throw ExampleNodeError(message: "not healthy within 60s of READY=1; log:\n\(daemon.log)")
        }
        return Running(
            node: node, daemon: daemon, notify: notify, socket: socket, state: state, readyMessages: ready, healthAtReady: healthAtReady
        )
    }

    /// Every path, type, size, mtime and link target of the node's kubelet tree
    /// and of `outside/`: what a dry run must leave alone.
    func fingerprint(_ node: ExampleNode) throws -> String {
        try ChildProcess.run("/usr/bin/find", [node.kubeletRoot, node.outside, "-printf", "%p %y %s %T@ %l\n"]).stdout
            .split(separator: "\n").sorted().joined(separator: "\n")
    }

    func plan(_ running: Running) throws -> Plan {
        let result = try ChildProcess.run(PackagePaths.binary, [
            "--plan", "--json", "--kubelet-root", running.node.kubeletRoot, "--cgroup-root", running.node.cgroupRoot, "--manifests", running.node.manifests,
            "--policy", Self.singleSnapshotPolicy, "--state-dir", running.state, "--log-target", "stderr",
        ])
        guard result.status == 0 else { throw ExampleNodeError(message: "--plan failed: \(result.stderr)") }
        return try Plan.decoder().decode(Plan.self, from: Data(result.stdout.utf8))
    }

    @Test("a read-only cat is recorded by the dry-run daemon, survives SIGTERM, and keeps the volume")
    func readOnlyAccessIsRecorded() throws {
        let running = try start()
        defer { running.daemon.stop(signal: SIGKILL); running.node.remove() }
        let before = try fingerprint(running.node)
        let target = try #require(running.node.expectations.first { $0.path.hasSuffix("000000000008/volumes/kubernetes.io~empty-dir/features") })
        #expect(target.verdict == "reap")
        let file = target.path + "/sub/app.log"
        let mtime = try FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as? Date
        _ = try ChildProcess.run("/bin/cat", [file])
        #expect(try FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as? Date == mtime)
        // The API sees it once the next cycle runs.
        #expect(try eventually(timeout: 20) {
            let (status, body) = try curl(running.socket, "/v1/volumes?state=active")
            return status == 200 && body.contains(target.path)
        })
        #expect(running.daemon.stop() == 0, "\(running.daemon.log)")
        #expect(running.daemon.log.contains("access store flushed"))

        let plan = try plan(running)
        let verdict = try #require(plan.volumes.first { $0.path == target.path })
        #expect(verdict.verdict == .keep)
        #expect(verdict.reasons.contains(.recentAccess))
        #expect(verdict.lastAccessSource == .inotify || verdict.lastAccessSource == .store)
        // Every other volume is judged as before.
        for expected in running.node.expectations where expected.path != target.path {
            let other = try #require(plan.volumes.first { $0.path == expected.path })
            #expect(other.verdict.rawValue == expected.verdict, "\(expected.path): \(other.reasons)")
        }
        // The dry-run daemon deleted nothing.
        #expect(try fingerprint(running.node) == before)
    }

    @Test("READY=1 comes after every watch is set and the socket listens; STATUS and STOPPING follow")
    func readiness() throws {
        let running = try start()
        defer { running.daemon.stop(signal: SIGKILL); running.node.remove() }
        // At READY the socket answers at once and health reports the watches
        // (200, or 503 "starting" while the first plan is made).
        let (status, body) = running.healthAtReady
        #expect(status == 200 || status == 503, "\(body)")
        let health = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let watches = health?["watches"] as? Int ?? 0
        let directories = try ChildProcess.run("/usr/bin/find", [running.node.kubeletRoot + "/pods", "-xdev", "-type", "d"]).stdout
            .split(separator: "\n").filter { !$0.contains("not-a-pod") && !$0.contains("lost+found") }.count
        #expect(watches >= directories - 5, "watches \(watches), directories \(directories)")
        #expect(running.readyMessages.joined().contains("STATUS=") || running.notify.waitFor("STATUS=", timeout: 10) != nil)
        running.daemon.process.interrupt()
        #expect(running.notify.waitFor("STOPPING=1", timeout: 20) != nil)
        #expect(running.daemon.stop(timeout: 20) == 0)
    }

    @Test("the socket API answers as the contract says while the dry-run daemon runs")
    func socketAPI() throws {
        let running = try start(node: try ExampleNode())
        defer { running.daemon.stop(signal: SIGKILL); running.node.remove() }
        // Mode 0660.
        let attributes = try FileManager.default.attributesOfItem(atPath: running.socket)
        #expect((attributes[.posixPermissions] as? Int) == 0o660)
        #expect(try curl(running.socket, "/healthz").status == 200)

        // /v1/volumes?state=idle lists exactly the reap verdicts.
        let (idleStatus, idleBody) = try curl(running.socket, "/v1/volumes?state=idle")
        #expect(idleStatus == 200)
        let idleObject = try JSONSerialization.jsonObject(with: Data(idleBody.utf8)) as? [String: Any]
        let idlePaths = Set((idleObject?["volumes"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String })
        let expectedIdle = Set(running.node.expectations.filter { $0.verdict == "reap" }.map(\.path))
        #expect(idlePaths == expectedIdle)

        // /v1/plan is the same document as --plan --json (volumes and verdicts).
        let (planStatus, planBody) = try curl(running.socket, "/v1/plan")
        #expect(planStatus == 200)
        let served = try Plan.decoder().decode(Plan.self, from: Data(planBody.utf8))
        let oneShot = try plan(running)
        #expect(served.volumes.map(\.path) == oneShot.volumes.map(\.path))
        #expect(served.volumes.map(\.verdict) == oneShot.volumes.map(\.verdict))
        #expect(served.volumes.map(\.reasons) == oneShot.volumes.map(\.reasons))

        // A pod's volumes; unknown pods and paths are 404.
        let uid = try #require(oneShot.volumes.first?.podUID)
        #expect(try curl(running.socket, "/v1/volumes/\(uid)").status == 200)
        #expect(try curl(running.socket, "/v1/volumes/00000000-0000-4000-8000-999999999999").status == 404)
        #expect(try curl(running.socket, "/no/such/path").status == 404)
        #expect(try curl(running.socket, "/v1/plan", method: "DELETE").status == 405)

        // Metrics.
        let (metricsStatus, metrics) = try curl(running.socket, "/metrics")
        #expect(metricsStatus == 200)
        #expect(metrics.contains("volume_reaper_"))

        // POST /v1/reconcile: root yes, uid 65534 no. The socket is 0660 root:root, so
        // for the refusal to come from SO_PEERCRED (not from EACCES) the test opens it up.
        #expect(try curl(running.socket, "/v1/reconcile", method: "POST").status == 200)
        chmod(running.socket, 0o666)
        chmod(URL(fileURLWithPath: running.socket).deletingLastPathComponent().path, 0o755)
        chmod(running.node.directory.path, 0o755)
        #expect(try curl(running.socket, "/v1/reconcile", method: "POST", asUser: 65534).status == 403)

        // Garbage gets a 4xx and the daemon keeps serving.
        #expect(try rawRequest(running.socket, "NOT HTTP AT ALL\r\n\r\n").hasPrefix("HTTP/1.1 4"))
        #expect(try curl(running.socket, "/healthz").status == 200)

        // The CLI client lists the same idle set.
        let idleCLI = try ChildProcess.run(PackagePaths.binary, ["idle", "--json", "--socket", running.socket])
        #expect(idleCLI.status == 0, "\(idleCLI.stderr)")
        let cliObject = try JSONSerialization.jsonObject(with: Data(idleCLI.stdout.utf8)) as? [String: Any]
        #expect(Set((cliObject?["volumes"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }) == expectedIdle)
        let statusCLI = try ChildProcess.run(PackagePaths.binary, ["status", "--socket", running.socket])
        #expect(statusCLI.status == 0)
        #expect(statusCLI.stdout.contains("\"healthy\" : true"))

        #expect(running.daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: running.socket))
        let after = try ChildProcess.run(PackagePaths.binary, ["status", "--socket", running.socket])
        #expect(after.status != 0)
        #expect(after.stderr.contains("no volume-reaper daemon answers"))
    }

    @Test("the real daemon reaps exactly the reap verdicts and keeps the rest")
    func realDaemonReaps() throws {
        let running = try start(dryRun: false)
        defer { running.daemon.stop(signal: SIGKILL); running.node.remove() }
        for expected in running.node.expectations {
            let exists = FileManager.default.fileExists(atPath: expected.path)
            #expect(exists == (expected.verdict == "keep"), "\(expected.path)")
        }
        #expect(running.daemon.stop() == 0)
    }

    @Test("kill -9 during an event storm: the restarted daemon opens its store and no volume looks older than it is")
    func killDuringStorm() throws {
        let first = try start()
        defer { first.daemon.stop(signal: SIGKILL) }
        let target = try #require(first.node.expectations.first { $0.path.hasSuffix("000000000002/volumes/kubernetes.io~empty-dir/cache") })
        // A writer churning files in one idle volume; kill the daemon mid-storm.
        let storm = try BackgroundProcess("/bin/bash", ["-c", "i=0; while true; do echo $i > '\(target.path)/f$((i % 50))'; rm -f '\(target.path)/f$(((i + 25) % 50))'; i=$((i+1)); done"], log: first.node.directory.appending("storm.log"))
        usleep(1_500_000)
        let before = try plan(first)
        #expect(first.daemon.stop(signal: SIGKILL) != nil)
        storm.stop(signal: SIGKILL)

        let second = try start(node: first.node)
        defer { second.daemon.stop(signal: SIGKILL); second.node.remove() }
        #expect(!second.daemon.log.contains("corrupt"), "\(second.daemon.log)")
        #expect(second.daemon.stop() == 0)
        let after = try plan(second)
        for volume in after.volumes {
            guard let earlier = before.volumes.first(where: { $0.path == volume.path }),
                  let previous = earlier.lastAccess, let now = volume.lastAccess else { continue }
            #expect(now >= previous, "\(volume.path) looks older after the crash")
        }
        let stormed = try #require(after.volumes.first { $0.path == target.path })
        #expect(stormed.verdict == .keep)
        #expect(stormed.reasons.contains(.recentAccess))
    }

    @Test("SIGHUP reloads the policy; a broken policy keeps the previous one")
    func reloadOnSIGHUP() throws {
        let node = try ExampleNode()
        let policy = node.directory.appending("policy.yaml")
        try FileManager.default.copyItem(atPath: Self.singleSnapshotPolicy, toPath: policy)
        let running = try start(node: node, policy: policy)
        defer { running.daemon.stop(signal: SIGKILL); running.node.remove() }
        func idleCount() throws -> Int {
            let (_, body) = try curl(running.socket, "/v1/volumes?state=idle")
            let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            return (object?["volumes"] as? [[String: Any]])?.count ?? -1
        }
        #expect(try idleCount() > 0)
        // Nothing is idle for a hundred days.
        try "idle:\n  after: 100d\nannotation:\n  idleAfter: 100d\n".write(toFile: policy, atomically: true, encoding: .utf8)
        kill(running.daemon.pid, SIGHUP)
        #expect(running.notify.waitFor("RELOADING=1", timeout: 20) != nil)
        #expect(try eventually(timeout: 20) { try idleCount() == 0 })
        // A broken file is refused and the last good policy stays.
        try "idle:\n  after: -1m\n".write(toFile: policy, atomically: true, encoding: .utf8)
        kill(running.daemon.pid, SIGHUP)
        #expect(eventually(timeout: 20) { running.daemon.log.contains("policy reload failed") })
        #expect(try idleCount() == 0)
        #expect(running.daemon.stop() == 0)
    }

    @Test("WATCHDOG=1 is sent while cycles complete when WATCHDOG_USEC is set")
    func watchdog() throws {
        let running = try start(environment: ["WATCHDOG_USEC": "2000000"])
        defer { running.daemon.stop(signal: SIGKILL); running.node.remove() }
        #expect(running.notify.waitFor("WATCHDOG=1", timeout: 10) != nil)
        #expect(running.daemon.stop() == 0)
    }

    /// Writes `request` to the socket and returns what comes back.
    func rawRequest(_ socket: String, _ request: String) throws -> String {
        let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(10)\ns.connect(sys.argv[1])\ns.sendall(sys.argv[2].encode())\nprint(s.recv(4096).decode(errors='replace'))"
        return try ChildProcess.run("/usr/bin/python3", ["-c", script, socket, request]).stdout
    }
}
