import Foundation
import ReaperCore
import Testing
import TestSupport

/// `volume-reaper --plan` as an operator runs it, on the realistic example node.
@Suite("volume-reaper --plan", .serialized)
struct PlanCommandTests {
    /// The default policy, but one snapshot confirms an orphan (see `TestPolicies`).
    static let singleSnapshotPolicy = TestPolicies.singleSnapshot

    func planArguments(_ node: ExampleNode, state: String, json: Bool = true) -> [String] {
        ["--plan"] + (json ? ["--json"] : []) + [
            "--kubelet-root", node.kubeletRoot, "--cgroup-root", node.cgroupRoot, "--manifests", node.manifests,
            "--policy", Self.singleSnapshotPolicy, "--state-dir", state, "--log-target", "stderr",
        ]
    }

    /// Every path, size and mtime under `directory`: proof that nothing changed.
    func fingerprint(_ directory: String) throws -> String {
        try ChildProcess.run("/usr/bin/find", [directory, "-printf", "%p %y %s %T@ %l\n"]).stdout
            .split(separator: "\n").sorted().joined(separator: "\n")
    }

    @Test("every verdict on the realistic node is the one design §4 and §5 give")
    func realisticNodeVerdicts() throws {
        let node = try ExampleNode(holdLockSeconds: 120)
        defer { node.remove() }
        let state = node.directory.appending("state")
        let before = try fingerprint(node.directory.path)

        let result = try ChildProcess.run(PackagePaths.binary, planArguments(node, state: state))
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let plan = try Plan.decoder().decode(Plan.self, from: Data(result.stdout.utf8))

        let byPath = Dictionary(uniqueKeysWithValues: plan.volumes.map { ($0.path, $0) })
        for expected in node.expectations {
            let verdict = try #require(byPath[expected.path], "missing from the plan: \(expected.path)")
            #expect(verdict.verdict.rawValue == expected.verdict, "\(expected.path): \(verdict.reasons)")
            #expect(Set(verdict.reasons.map(\.rawValue)) == expected.reasons, "\(expected.path)")
        }
        // Nothing but the expected volumes: junk under pods/ is never listed.
        #expect(Set(byPath.keys) == Set(node.expectations.map(\.path)))
        #expect(plan.manifests.complete)
        #expect(plan.manifests.errors.isEmpty)
        #expect(plan.summary.reap == node.expectations.filter { $0.verdict == "reap" }.count)
        #expect(plan.summary.reap + plan.summary.keep == plan.volumes.count)

        // Orphans carry pod: null; CSI and plugins are unescaped.
        let orphan = try #require(plan.volumes.first { $0.reasons.contains(.orphan) })
        #expect(orphan.pod == nil)
        #expect(result.stdout.contains("\"pod\" : null"))
        #expect(plan.volumes.contains { $0.plugin.unescaped == "kubernetes.io/empty-dir" })
        #expect(result.stdout.contains("\"plugin\" : \"kubernetes.io/csi\""))
        // A terminated pod's last access is at least its containers' finishedAt.
        let finished = try #require(plan.volumes.first { $0.name == "job-config" })
        #expect(finished.lastAccessSource == .finished)
        #expect(finished.idleSeconds >= 2 * 3600 - 60)

        // A dry run changes nothing on disk.
        #expect(try fingerprint(node.directory.path) == before)
        #expect(!FileManager.default.fileExists(atPath: state + "/reaper.lock"))
    }

    @Test("the table lists every volume with reasons and a summary line")
    func table() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let result = try ChildProcess.run(PackagePaths.binary, planArguments(node, state: node.directory.appending("state"), json: false))
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("VERDICT") && $0.contains("REASONS") })
        #expect(lines.filter { $0.hasPrefix("reap ") || $0.hasPrefix("keep ") }.count == node.expectations.count)
        let reaps = node.expectations.filter { $0.verdict == "reap" }.count
        #expect(lines.contains { $0.contains("volumes in \(node.kubeletRoot): \(reaps) to reap") })
        #expect(result.stdout.contains("pod-terminated,idle"))
        #expect(result.stdout.contains("(orphan 5e1f0000)"))
        // Reaps come first.
        let firstKeep = lines.firstIndex { $0.hasPrefix("keep ") } ?? lines.count
        let lastReap = lines.lastIndex { $0.hasPrefix("reap ") } ?? 0
        #expect(lastReap < firstKeep)
    }

    @Test("a truncated manifest is named in the plan and on stderr, and orphans are kept")
    func truncatedManifest() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let file = node.manifests + "/kubelet-pods.json"
        let text = try String(contentsOfFile: file, encoding: .utf8)
        try String(text.prefix(text.count / 2)).write(toFile: file, atomically: false, encoding: .utf8)

        let result = try ChildProcess.run(PackagePaths.binary, planArguments(node, state: node.directory.appending("state")))
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stderr.contains(file))
        let plan = try Plan.decoder().decode(Plan.self, from: Data(result.stdout.utf8))
        #expect(!plan.manifests.complete)
        #expect(plan.manifests.errors.contains { $0.contains(file) })
        // The pods of the broken file count as unknown: orphans, all kept.
        for volume in plan.volumes where volume.orphan {
            #expect(volume.verdict == .keep)
            #expect(volume.reasons.contains(.manifestsIncomplete), "\(volume.path)")
        }
        #expect(plan.volumes.filter(\.orphan).count > 1)
    }

    @Test("a FIFO, a directory, /dev/zero and a sparse 1 TiB file named *.json: errors in the plan, orphans kept, promptly")
    func hostileManifestFiles() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let fifo = node.manifests + "/feed.json"
        #expect(mkfifo(fifo, 0o600) == 0)
        let directory = node.manifests + "/nested.json"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let zero = node.manifests + "/zero.json"
        try FileManager.default.createSymbolicLink(atPath: zero, withDestinationPath: "/dev/zero")
        let sparse = node.manifests + "/sparse.json"
        #expect(FileManager.default.createFile(atPath: sparse, contents: nil))
        #expect(truncate(sparse, 1 << 40) == 0)

        let start = Date()
        let result = try ChildProcess.run(PackagePaths.binary, planArguments(node, state: node.directory.appending("state")))
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let plan = try Plan.decoder().decode(Plan.self, from: Data(result.stdout.utf8))
        #expect(!plan.manifests.complete)
        for (file, what) in [(fifo, "is a FIFO"), (directory, "is a directory"), (zero, "is a character device"),
                             (sparse, "is larger than the limit of 67108864 bytes")] {
            #expect(plan.manifests.errors.contains { $0.hasPrefix(file + ": " + what) }, "\(file): \(plan.manifests.errors)")
            #expect(result.stderr.contains(file))
        }
        // The other manifests still count, but the snapshot cannot vouch for orphans.
        #expect(plan.volumes.contains { $0.verdict == .reap })
        #expect(plan.volumes.filter(\.orphan).count > 1)
        for volume in plan.volumes where volume.orphan {
            #expect(volume.verdict == .keep)
            #expect(volume.reasons.contains(.manifestsIncomplete), "\(volume.path)")
        }
    }

    @Test("no manifests at all: every orphan is kept as manifests-empty")
    func noManifests() throws {
        let node = try ExampleNode()
        defer { node.remove() }
        let empty = node.directory.appending("no-manifests")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        var arguments = planArguments(node, state: node.directory.appending("state"))
        arguments[arguments.firstIndex(of: node.manifests)!] = empty
        let result = try ChildProcess.run(PackagePaths.binary, arguments)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let plan = try Plan.decoder().decode(Plan.self, from: Data(result.stdout.utf8))
        #expect(plan.summary.reap == 0)
        for volume in plan.volumes where volume.orphan {
            #expect(volume.reasons.contains(.manifestsEmpty))
        }
    }

    @Test("a missing kubelet root is one clear line and a failure exit")
    func missingRoot() throws {
        let directory = try TemporaryDirectory("noroot")
        defer { directory.remove() }
        let result = try ChildProcess.run(PackagePaths.binary, [
            "--plan", "--kubelet-root", directory.appending("absent"), "--manifests", directory.path,
            "--policy", Self.singleSnapshotPolicy, "--log-target", "stderr",
        ])
        #expect(result.status != 0)
        #expect(result.stderr.contains(directory.appending("absent") + "/pods"))
    }

    @Test("bad flags are refused with the flag named")
    func badFlags() throws {
        let result = try ChildProcess.run(PackagePaths.binary, ["--plan", "--log-target", "syslog"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--log-target"))
        let none = try ChildProcess.run(PackagePaths.binary, [])
        #expect(none.status != 0)
    }
}

/// `volume-reaper policy check` on shipped and broken policies.
@Suite("volume-reaper policy check")
struct PolicyCheckCommandTests {
    @Test("every shipped policy passes", arguments: ["default.yaml", "conservative.yaml", "ci-runner.yaml"])
    func shipped(_ name: String) throws {
        let path = PackagePaths.root.appendingPathComponent("policies/\(name)").path
        let result = try ChildProcess.run(PackagePaths.binary, ["policy", "check", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("ok"))
    }

    @Test("a bad policy is refused naming the file, field and value")
    func refused() throws {
        let directory = try TemporaryDirectory("policy")
        defer { directory.remove() }
        let file = directory.appending("bad.yaml")
        try "idle:\n  after: -5m\n".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(PackagePaths.binary, ["policy", "check", file])
        #expect(result.status != 0)
        #expect(result.stderr.contains(file))
        #expect(result.stderr.contains("idle.after"))
        #expect(result.stderr.contains("-5m"))
    }
}
