import Foundation
import ReaperCore
import Synchronization
import Testing
import TestSupport

/// `volume-reaper --once` as an operator runs it, on the realistic example node.
@Suite("volume-reaper --once", .serialized)
struct OnceCommandTests {
    /// The default policy, but one snapshot confirms an orphan (see `TestPolicies`).
    static let singleSnapshotPolicy = TestPolicies.singleSnapshot
    static let journalSocket = "/run/systemd/journal/socket"
    static let hasJournal = FileManager.default.fileExists(atPath: journalSocket)
    static let reapedMessageID = "5109ffc17eb34ec3bd6968d5b3c35abc"

    func arguments(
        _ node: ExampleNode, _ mode: [String], logTarget: String = "stderr", manifests: String? = nil
    ) -> [String] {
        mode + [
            "--kubelet-root", node.kubeletRoot, "--cgroup-root", node.cgroupRoot, "--manifests", manifests ?? node.manifests,
            "--policy", Self.singleSnapshotPolicy, "--state-dir", node.directory.appending("state"), "--log-target", logTarget,
        ]
    }

    /// Every entry under `path` (mounts included, symlinks not followed): path,
    /// type, size, symlink target, mtime, and a hash of every regular file.
    func fingerprint(_ path: String) throws -> String {
        let result = try ChildProcess.shell("""
            cd '\(path)' && find . -printf '%p|%y|%s|%l|%T@\\n' | LC_ALL=C sort \
            && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
            """)
        try #require(result.status == 0, "fingerprint \(path): \(result.stderr)")
        return result.stdout
    }

    func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    func podDirectory(_ node: ExampleNode, _ number: Int) -> String {
        node.kubeletRoot + "/pods/" + String(format: "5e1f0000-0000-4000-8000-%012d", number)
    }

    /// Volume path to expected verdict (`reap` or `keep`), from `expected.tsv`.
    func verdicts(_ node: ExampleNode, overriding: [String: String] = [:]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: node.expectations.map { ($0.path, $0.verdict) }).merging(overriding) { $1 }
    }

    /// What must not change: each kept volume, `outside/`, the junk under `pods/`.
    func keptFingerprints(_ node: ExampleNode, _ verdicts: [String: String]) throws -> [String: String] {
        var prints: [String: String] = [:]
        for (path, verdict) in verdicts where verdict == "keep" {
            prints[path] = try fingerprint(path)
        }
        prints[node.outside] = try fingerprint(node.outside)
        prints[node.kubeletRoot + "/pods/not-a-pod"] = try fingerprint(node.kubeletRoot + "/pods/not-a-pod")
        return prints
    }

    /// The final tree: exactly the planned reaps gone, everything else as before.
    func expectFinalTree(_ node: ExampleNode, _ verdicts: [String: String], before: [String: String]) throws {
        for (path, verdict) in verdicts where verdict == "reap" {
            #expect(!exists(path), "should be reaped: \(path)")
        }
        for (path, print) in before {
            #expect(try fingerprint(path) == print, "changed: \(path)")
        }
        #expect(!exists(podDirectory(node, 15)), "the old orphan's pod directory is gone")
        #expect(exists(podDirectory(node, 16) + "/volumes/kubernetes.io~empty-dir/scratch"), "the young orphan stays")
        #expect(exists(node.kubeletRoot + "/pods/README"))
        #expect(exists(node.kubeletRoot + "/pods/lost+found"))
        if isRoot {
            let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            let mounts = mountinfo.split(separator: "\n").map { String($0.split(separator: " ")[4]) }
            for mount in [
                podDirectory(node, 1) + "/volumes/kubernetes.io~secret/kube-api-access-x7k2p",
                podDirectory(node, 11) + "/volumes/kubernetes.io~empty-dir/shared/sub/mnt",
                podDirectory(node, 11) + "/volumes/kubernetes.io~empty-dir/ramdisk",
            ] {
                #expect(mounts.contains(mount), "still mounted: \(mount)")
            }
        }
    }

    /// Holds a flock on `path` until stopped: bash opens it, locks it, and
    /// execs `sleep`, so one SIGKILL frees it. (`ExampleNode(holdLockSeconds:)`
    /// makes `make-example-node` background a holder that inherits the socket
    /// Foundation's `Process` watches for exit, so building the node waits the
    /// whole hold out, and the lock is gone before the test starts.)
    final class LockHolder {
        let process = Process()

        init(_ path: String, seconds: Int = 120) throws {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", "exec 9<'\(path)' && flock -x -w 10 9 && exec sleep \(seconds)"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline, (try? ChildProcess.run("/usr/bin/flock", ["-xn", path, "true"]))?.status == 0 {
                usleep(20_000)
            }
        }

        /// SIGKILL: the test runner's children inherit a mask that blocks SIGTERM.
        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }

    func reapedCount(_ stdout: String) -> Int? {
        guard let range = stdout.range(of: #"reaped (\d+) volumes"#, options: .regularExpression) else { return nil }
        return Int(stdout[range].split(separator: " ")[1])
    }

    @Test("on the realistic node, --once deletes exactly the planned reaps and nothing else")
    func realisticNode() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        // The flock-held volume of design §5.4 (the example's `frames`).
        let frames = podDirectory(node, 13) + "/volumes/kubernetes.io~empty-dir/frames"
        let holder = try LockHolder(frames + "/sub")
        defer { holder.stop() }
        let verdicts = verdicts(node, overriding: [frames: "keep"])
        let planRun = try ChildProcess.run(PackagePaths.binary, arguments(node, ["--plan", "--json"]))
        try #require(planRun.status == 0, "stderr: \(planRun.stderr)")
        let plan = try Plan.decoder().decode(Plan.self, from: Data(planRun.stdout.utf8))
        let planned = Set(plan.reaps.map(\.path))
        let expected = Set(verdicts.filter { $0.value == "reap" }.keys)
        #expect(planned == expected)
        #expect(plan.verdict(frames)?.reasons == [.lockHeld])
        let before = try keptFingerprints(node, verdicts)

        let target = Self.hasJournal ? "journald" : "stderr"
        let once = try ChildProcess.run(PackagePaths.binary, arguments(node, ["--once"], logTarget: target))
        #expect(once.status == 0, "stderr: \(once.stderr)")
        #expect(reapedCount(once.stdout) == expected.count, "stdout: \(once.stdout)")
        #expect(once.stdout.contains("lock-held"))
        try expectFinalTree(node, verdicts, before: before)
    }

    /// Rounds on fresh nodes: the race of two starts is not the same each time.
    @Test("two --once processes at once: one does the deletions, no errors, the expected tree", arguments: 1...3)
    func twoAtOnce(round: Int) throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let verdicts = verdicts(node)
        let before = try keptFingerprints(node, verdicts)
        let results = Mutex<[ProcessResult?]>([])
        let binary = PackagePaths.binary
        let arguments = arguments(node, ["--once"])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            let result = try? ChildProcess.run(binary, arguments)
            results.withLock { $0.append(result) }
        }
        let runs = results.withLock { $0 }.compactMap { $0 }
        #expect(runs.count == 2)
        for run in runs {
            #expect(run.status == 0 || run.status == 4, "status \(run.status): \(run.stderr)")
            for line in run.stderr.split(separator: "\n") {
                #expect(!line.contains(" error ") && !line.contains(" critical "), "\(line)")
            }
            if run.status == 4 { #expect(run.stderr.contains("reaper lock")) }
        }
        let expected = verdicts.values.filter { $0 == "reap" }.count
        let reaped = runs.filter { $0.status == 0 }.compactMap { reapedCount($0.stdout) }
        #expect(reaped.reduce(0, +) == expected, "each volume reaped once: \(reaped)")
        #expect(reaped.filter { $0 > 0 }.count == 1)
        try expectFinalTree(node, verdicts, before: before)
    }

    @Test("each reap is one journald entry with MESSAGE_ID and the fields of design §6",
          .enabled(if: hasJournal, "needs journald: no socket at /run/systemd/journal/socket"))
    func journaldEntries() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let once = try ChildProcess.run(PackagePaths.binary, arguments(node, ["--once"], logTarget: "journald"))
        try #require(once.status == 0, "stderr: \(once.stderr)")
        #expect(!once.stderr.contains("journald_error"), "journald refused entries: \(once.stderr)")
        let reaps = node.expectations.filter { $0.verdict == "reap" }
        let prefix = node.directory.path + "/"

        var entries: [[String: String]] = []
        let found = (0..<50).contains { _ in
            let result = try? ChildProcess.run("/usr/bin/journalctl", [
                "SYSLOG_IDENTIFIER=volume-reaper", "-o", "json", "--no-pager", "--since", "-5min",
            ])
            entries = (result?.stdout ?? "").split(separator: "\n").compactMap { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
                let fields = object.compactMapValues { $0 as? String }
                return fields["VOLUME_PATH"]?.hasPrefix(prefix) == true ? fields : nil
            }
            let reaped = Set(entries.filter { $0["MESSAGE_ID"] == Self.reapedMessageID }.compactMap { $0["VOLUME_PATH"] })
            if reaps.allSatisfy({ reaped.contains($0.path) }) { return true }
            usleep(200_000)
            return false
        }
        #expect(found, "journal entries for this node: \(entries.count)")
        // Every entry says the mode (issue 9): --once deletes.
        #expect(entries.allSatisfy { $0["MODE"] == "reap" }, "\(entries.filter { $0["MODE"] != "reap" }.prefix(2))")

        for expected in reaps {
            let mine = entries.filter { $0["VOLUME_PATH"] == expected.path && $0["MESSAGE_ID"] == Self.reapedMessageID }
            #expect(mine.count == 1, "\(expected.path): \(mine.count) entries")
            guard let entry = mine.first else { continue }
            let components = expected.path.split(separator: "/").map(String.init)
            let name = components[components.count - 1]
            let plugin = components[components.count - 2].replacingOccurrences(of: "~", with: "/")
            let uid = components[components.count - 4]
            #expect(entry["MESSAGE"]?.isEmpty == false)
            #expect(entry["PRIORITY"] == "6")
            #expect(entry["POD_UID"] == uid)
            #expect(entry["VOLUME_PLUGIN"] == plugin)
            #expect(entry["VOLUME_NAME"] == name)
            #expect(entry["POD_NAMESPACE"] != nil && entry["POD_NAME"] != nil, "\(expected.path)")
            #expect(Int(entry["IDLE_SECONDS"] ?? "") ?? 0 >= 30 * 60)
            #expect(Int(entry["BYTES_FREED"] ?? "") != nil)
            #expect(Int(entry["FILES_REMOVED"] ?? "") ?? 0 >= 1)
            #expect(entry["REASON"]?.contains("idle") == true)
            #expect(entry["DRY_RUN"] == "false")
        }
        // Named pods carry their namespace and name; an orphan has none to give.
        let job = try #require(entries.first { $0["VOLUME_PATH"]?.hasSuffix("kubernetes.io~empty-dir/scratch") == true && $0["POD_UID"] == "5e1f0000-0000-4000-8000-000000000001" })
        #expect(job["POD_NAMESPACE"] == "batch")
        #expect(job["POD_NAME"] == "report-job-29184")
        #expect(Int(job["BYTES_FREED"] ?? "") ?? 0 >= 65536)
        // Issue 19: MESSAGE names what went, for people reading journalctl:
        // the volume's type and name, the pod, the bytes and the idle time.
        let message = try #require(job["MESSAGE"])
        #expect(message.hasPrefix("reaped emptyDir scratch of pod batch/report-job-29184 ("), "\(message)")
        #expect(message.contains(try Regex(#"\(\d+\.\d (KiB|MiB), idle \d+[dhm]"#)), "\(message)")
        let reapMessages = entries.filter { $0["MESSAGE_ID"] == Self.reapedMessageID }.compactMap { $0["MESSAGE"] }
        #expect(Set(reapMessages).count == reapMessages.count, "identical reap lines: \(reapMessages)")
        // Kept volumes are no reaps.
        for expected in node.expectations where expected.verdict == "keep" {
            #expect(!entries.contains { $0["VOLUME_PATH"] == expected.path && $0["MESSAGE_ID"] == Self.reapedMessageID })
        }
    }

    @Test("a volume of 3,000 sibling directories is judged and reaped under a 256-descriptor limit")
    func wideVolumeUnderDescriptorLimit() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let volume = podDirectory(node, 1) + "/volumes/kubernetes.io~empty-dir/scratch"
        // Old, like the rest of the volume: only the width is new.
        let made = try ChildProcess.shell("""
            cd '\(volume)' && stamp=$(stat -c %y .) && seq -f 'dir-%g' 3000 | xargs mkdir \
            && seq -f 'dir-%g' 3000 | xargs touch -h -d "$stamp" && touch -h -d "$stamp" .
            """)
        try #require(made.status == 0, "\(made.stderr)")

        // systemd's default soft limit is 1,024; a quarter of it leaves no slack
        // for a walk that held a descriptor per pending directory.
        let quoted = arguments(node, []).map { "'\($0)'" }.joined(separator: " ")
        let plan = try ChildProcess.shell("ulimit -n 256 && exec '\(PackagePaths.binary)' --plan --json \(quoted)")
        try #require(plan.status == 0, "\(plan.stderr)")
        let decoded = try Plan.decoder().decode(Plan.self, from: Data(plan.stdout.utf8))
        let verdict = try #require(decoded.verdict(volume))
        #expect(verdict.verdict == .reap, "\(verdict.reasons)")
        #expect(verdict.reasons == [.podTerminated, .idle])

        let once = try ChildProcess.shell("ulimit -n 256 && exec '\(PackagePaths.binary)' --once \(quoted)")
        #expect(once.status == 0, "stdout: \(once.stdout) stderr: \(once.stderr)")
        #expect(!exists(volume), "stdout: \(once.stdout)")
    }

    @Test("a chain of 1,100 nested directories of 255-byte names is reaped under a 256-descriptor limit, memory bounded by depth x one name")
    func deepChainUnderDescriptorLimit() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let volume = podDirectory(node, 1) + "/volumes/kubernetes.io~empty-dir/scratch"
        // Old, like the rest of the volume: only the depth is new.
        let made = try ChildProcess.run("/usr/bin/python3", ["-c", """
            import os, sys
            volume = sys.argv[1]; status = os.stat(volume); times = (status.st_atime, status.st_mtime)
            os.chdir(volume)
            for _ in range(1100):
                os.mkdir('d' * 255); os.chdir('d' * 255)
            open('leaf', 'w').write('x'); os.utime('leaf', times)
            for _ in range(1100):
                os.utime('.', times); os.chdir('..')
            os.utime('.', times)
            """, volume])
        try #require(made.status == 0, "\(made.stderr)")

        // The old remover held one descriptor and one full path per level:
        // EMFILE at 256 descriptors, and ~150 MB of path strings at this depth.
        let quoted = arguments(node, []).map { "'\($0)'" }.joined(separator: " ")
        let once = try ChildProcess.shell("ulimit -n 256 && exec /usr/bin/time -f 'max-rss-kb=%M' '\(PackagePaths.binary)' --once \(quoted)")
        #expect(once.status == 0, "stdout: \(once.stdout) stderr: \(once.stderr)")
        #expect(!exists(volume), "stdout: \(once.stdout)")
        let rss = once.stderr.split(separator: "\n").last { $0.hasPrefix("max-rss-kb=") }.flatMap { Int($0.dropFirst("max-rss-kb=".count)) }
        let peak = try #require(rss, "no max-rss line from /usr/bin/time: \(once.stderr)")
        #expect(peak < 100_000, "peak RSS \(peak) kB")
    }

    @Test("manifests listing 1 of many pods: --once exits 3, no orphan deleted, ALERT on stderr")
    func circuitBreaker() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let full = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: node.manifests + "/kubelet-pods.json"))) as? [String: Any]
        let items = try #require(full?["items"] as? [[String: Any]])
        let first = try #require(items.first { (($0["metadata"] as? [String: Any])?["uid"] as? String)?.hasSuffix("000000000001") == true })
        let truncated = node.directory.appending("one-pod")
        try FileManager.default.createDirectory(atPath: truncated, withIntermediateDirectories: true)
        let list: [String: Any] = ["kind": "PodList", "apiVersion": "v1", "items": [first]]
        try JSONSerialization.data(withJSONObject: list).write(to: URL(fileURLWithPath: truncated + "/pods.json"))

        let pods = node.kubeletRoot + "/pods"
        let others = try FileManager.default.contentsOfDirectory(atPath: pods)
            .filter { !$0.hasSuffix("000000000001") && $0 != "README" }.map { pods + "/" + $0 }
        let before = try Dictionary(uniqueKeysWithValues: others.map { ($0, try fingerprint($0)) })

        let once = try ChildProcess.run(PackagePaths.binary, arguments(node, ["--once"], manifests: truncated))
        #expect(once.status == 3, "stdout: \(once.stdout) stderr: \(once.stderr)")
        #expect(once.stderr.contains("ALERT"))
        #expect(once.stderr.contains("maxOrphanFraction"))
        for (path, print) in before {
            #expect(try fingerprint(path) == print, "an orphan was touched: \(path)")
        }
        // The listed, finished pod's idle volumes still go: a terminal phase is final.
        #expect(!exists(podDirectory(node, 1) + "/volumes/kubernetes.io~empty-dir/scratch"))
        #expect(!exists(podDirectory(node, 1) + "/volumes/kubernetes.io~configmap/job-config"))
    }
}


extension Plan {
    func verdict(_ path: String) -> VolumeVerdict? { volumes.first { $0.path == path } }
}
