#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ReaperCore
import Testing
import TestSupport

/// Issue 18, items 12 and 14, through the binary: a kubelet config that is a
/// sparse giant or a FIFO, and socket paths no terminal should see raw.
extension HostileInputTests {
    /// A node with nothing on it and a `pressure` policy, so `--plan` reads
    /// the kubelet config for its eviction thresholds.
    func planWithKubeletConfig(_ make: (String) throws -> Void) throws -> (Outcome, file: String) {
        let directory = try TemporaryDirectory("hostile-kubelet-config")
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.appending("kubelet/pods"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.appending("manifests"), withIntermediateDirectories: true)
        let policy = directory.appending("policy.yaml")
        try "pressure:\n  idleAfter: 5m\n".write(toFile: policy, atomically: true, encoding: .utf8)
        let file = directory.appending("kubelet-config.yaml")
        try make(file)
        let outcome = try run([
            "--plan", "--kubelet-root", directory.appending("kubelet"), "--manifests", directory.appending("manifests"),
            "--policy", policy, "--kubelet-config", file, "--state-dir", directory.appending("state"), "--log-target", "stderr",
        ], timeout: 15, killAboveKiB: 512 << 10)
        return (outcome, file)
    }

    @Test("an 8 GiB sparse kubelet config is refused by its size before it is read: prompt, small, one line naming the file")
    func sparseKubeletConfig() throws {
        let (outcome, file) = try planWithKubeletConfig { file in
            _ = FileManager.default.createFile(atPath: file, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
            try handle.truncate(atOffset: 8 << 30)
            try handle.close()
        }
        #expect(!outcome.timedOut, "killed after \(outcome.seconds) s at \(outcome.peakRSSKiB) KiB peak RSS")
        #expect(outcome.seconds < 5)
        #expect(outcome.peakRSSKiB < 200 << 10, "peak RSS \(outcome.peakRSSKiB) KiB")
        let lines = outcome.stderr.split(separator: "\n").filter { $0.contains(file) }
        #expect(!lines.isEmpty && lines.allSatisfy { $0.contains("larger than 4 MiB") }, "\(outcome.stderr)")
    }

    @Test("a kubelet config that is a FIFO is refused, not waited on")
    func fifoKubeletConfig() throws {
        let (outcome, file) = try planWithKubeletConfig { file in
            guard mkfifo(file, 0o644) == 0 else { throw SandboxUnavailable("mkfifo \(file)") }
        }
        #expect(!outcome.timedOut, "blocked on the FIFO for \(outcome.seconds) s")
        #expect(outcome.seconds < 5)
        let lines = outcome.stderr.split(separator: "\n").filter { $0.contains(file) }
        #expect(!lines.isEmpty && lines.allSatisfy { $0.contains("a FIFO, not a regular file") }, "\(outcome.stderr)")
    }

    @Test("status, idle and forecast with a --socket holding a newline and ESC, or 5,000 characters: one short escaped line",
          arguments: ["status", "idle", "forecast"])
    func clientErrorsEscaped(_ command: String) throws {
        let directory = try TemporaryDirectory("hostile-socket")
        defer { directory.remove() }
        for socket in [directory.appending("api\nsock\u{1B}[31mred"), directory.appending(String(repeating: "s", count: 5000))] {
            let outcome = try run([command, "--socket", socket])
            #expect(outcome.isCleanRefusal, "\(outcome.stderr)")
            #expect(!outcome.stderr.contains("\u{1B}"))
            #expect(outcome.stderr.count < 400, "a \(outcome.stderr.count)-character error")
        }
    }
}

/// Shutdown is bounded: SIGTERM ends the agent within the documented time
/// even when a cycle is blocked in the kernel. The block is real: the
/// `metrics.textfile` directory is a FUSE mount whose server never answers
/// (what a hung NFS mount does to anything that touches it).
@Suite("shutdown with a cycle blocked in the kernel", .enabled(if: getuid() == 0, "needs root to mount a FUSE file system"))
struct ShutdownBoundTests {
    /// The bound the README documents.
    static let shutdownBound: TimeInterval = 15

    @Test("SIGTERM while the cycle is blocked on a hung mount: the agent logs it and exits within the bound")
    func blockedCycle() throws {
        let directory = try TemporaryDirectory("shutdown-bound")
        defer { directory.remove() }
        for sub in ["kubelet/pods", "manifests", "hung", "cgroup/kubepods.slice"] {
            try FileManager.default.createDirectory(atPath: directory.appending(sub), withIntermediateDirectories: true)
        }
        let fuse = open("/dev/fuse", O_RDWR | O_CLOEXEC)
        guard fuse >= 0 else {
            print("skipped: shutdown bound test: /dev/fuse: \(String(cString: strerror(errno)))")
            return
        }
        let hung = directory.appending("hung")
        guard mount("vr-hung", hung, "fuse", UInt(MS_NOSUID | MS_NODEV), "fd=\(fuse),rootmode=40000,user_id=0,group_id=0") == 0 else {
            print("skipped: shutdown bound test: mount fuse: \(String(cString: strerror(errno)))")
            close(fuse)
            return
        }
        // Closing the server's end aborts the connection: whatever blocked gets ENOTCONN.
        defer {
            close(fuse)
            umount2(hung, Int32(MNT_DETACH))
        }
        let config = directory.appending("config.yaml")
        try """
            kubeletRoot: \(directory.appending("kubelet"))
            manifests: \(directory.appending("manifests"))
            stateDir: \(directory.appending("state"))
            socket: \(directory.appending("api.sock"))
            cgroupRoot: \(directory.appending("cgroup"))
            reconcileInterval: 1s
            flushInterval: 500ms
            logTarget: stderr
            metrics:
              textfile: \(hung)/volume_reaper.prom
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try BackgroundProcess(PackagePaths.binary, ["run", "--config", config], log: directory.appending("daemon.log"))
        defer { daemon.stop(signal: SIGKILL, timeout: 5) }
        #expect(eventually(timeout: 20) { daemon.log.contains("volume-reaper ready") }, "\(daemon.log)")
        // The first cycle runs at once after READY and blocks writing the textfile.
        sleep(2)
        let signalled = Date()
        let status = daemon.stop(signal: SIGTERM, timeout: Self.shutdownBound + 10)
        let seconds = Date().timeIntervalSince(signalled)
        #expect(status != nil, "still running \(Self.shutdownBound + 10) s after SIGTERM:\n\(daemon.log)")
        #expect(seconds < Self.shutdownBound + 3)
        #expect(daemon.log.contains("shutdown did not finish"), "\(daemon.log)")
    }
}

/// Issue 18, item 6 through the binary: a node with pod directories where no
/// kubelet pod cgroup tree can be found keeps every orphan, and says so in
/// `check`, `/healthz` and `/metrics`.
@Suite("no kubelet pod cgroup tree: orphans kept, and said")
struct LivenessTreeMissingTests {
    @Test("check fails naming cgroupRoot, with a fix; exit 1")
    func checkFails() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let wrong = node.directory.appending("wrong-cgroup")
        try FileManager.default.createDirectory(atPath: wrong + "/system.slice", withIntermediateDirectories: true)
        let result = try ChildProcess.run(PackagePaths.binary, [
            "check", "--kubelet-root", node.kubeletRoot, "--cgroup-root", wrong, "--manifests", node.manifests,
            "--policy", TestPolicies.singleSnapshot, "--state-dir", node.directory.appending("state"), "--socket", node.directory.appending("api.sock"),
        ])
        #expect(result.status == 1)
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("fail pod liveness: ") }
        #expect(line?.contains("under cgroupRoot \(wrong)") == true, "\(result.stdout)")
        #expect(line?.contains("liveness-unknown") == true)
        #expect(line?.contains(" -- fix: set cgroupRoot (--cgroup-root)") == true)
    }

    @Test("the daemon keeps the orphan as liveness-unknown; /healthz liveness missing; the tree-found gauge 0")
    func daemonSaysSo() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let wrong = node.directory.appending("wrong-cgroup")
        try FileManager.default.createDirectory(atPath: wrong, withIntermediateDirectories: true)
        let socket = node.directory.appending("api.sock")
        let config = node.directory.appending("config.yaml")
        try """
            kubeletRoot: \(node.kubeletRoot)
            cgroupRoot: \(wrong)
            procRoot: \(node.directory.appending("no-proc"))
            manifests: \(node.manifests)
            policy: \(TestPolicies.singleSnapshot)
            stateDir: \(node.directory.appending("state"))
            socket: \(socket)
            reconcileInterval: 1h
            logTarget: stderr
            dryRun: true
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try BackgroundProcess(PackagePaths.binary, ["run", "--config", config], log: node.directory.appending("daemon.log"))
        defer { daemon.stop() }
        #expect(eventually(timeout: 30) { (try? curl(socket, "/v1/plan"))?.status == 200 }, "\(daemon.log)")
        let plan = try Plan.decoder().decode(Plan.self, from: Data(try curl(socket, "/v1/plan").body.utf8))
        let orphans = node.expectations.filter { $0.reasons.contains("orphan") && $0.verdict == "reap" }
        #expect(!orphans.isEmpty)
        for orphan in orphans {
            let verdict = plan.volumes.first { $0.path == orphan.path }
            #expect(verdict?.verdict == .keep && verdict?.reasons.contains(.livenessUnknown) == true, "\(orphan.path): \(String(describing: verdict))")
        }
        let health = try JSONSerialization.jsonObject(with: Data(try curl(socket, "/healthz").body.utf8)) as? [String: Any]
        let liveness = health?["liveness"] as? [String: Any]
        #expect(liveness?["state"] as? String == "missing", "\(String(describing: health))")
        #expect((liveness?["problem"] as? String)?.contains(wrong) == true)
        #expect(try curl(socket, "/metrics").body.contains("volume_reaper_pod_liveness_tree_found 0"))
        #expect(daemon.log.contains("no kubelet pod cgroup tree found"))
    }
}
