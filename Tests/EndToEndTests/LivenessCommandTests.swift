import Foundation
import ReaperCore
import Testing
import TestSupport

/// The liveness cross-check through the binary: `cgroupRoot` from the config
/// file, a real cgroup with a sleeping process for one pod of the example node.
@Suite("volume-reaper --plan and --once with a live pod cgroup", .serialized)
struct LivenessCommandTests {
    @Test("a pod whose cgroup holds a process is kept (pod-alive) by --plan and --once; the rest as before")
    func livePodKept() throws {
        let sandbox: CgroupSandbox
        do {
            sandbox = try CgroupSandbox(.v2)
        } catch {
            guard let v1 = try? CgroupSandbox(.v1) else {
                print("skipped: liveness through the binary: \(error)")
                return
            }
            sandbox = v1
        }
        defer { sandbox.remove() }
        let node = try ExampleNode()
        defer { node.remove() }
        let reaped = node.expectations.filter { $0.verdict == "reap" && $0.path.contains("/pods/") }
        let target = try #require(reaped.first, "the example node has a volume to reap")
        let uid = try #require(target.path.components(separatedBy: "/pods/").last?.split(separator: "/").first.map(String.init))
        let sleeper = try Sleeper()
        defer { sleeper.kill() }
        try sandbox.move(sleeper.pid, into: try sandbox.makePod(uid, driver: .cgroupfs))

        let config = node.directory.appending("config.yaml")
        try Data("cgroupRoot: \(sandbox.root)\n".utf8).write(to: URL(fileURLWithPath: config))
        let arguments = [
            "--config", config, "--kubelet-root", node.kubeletRoot, "--manifests", node.manifests,
            "--policy", TestPolicies.singleSnapshot,
            "--state-dir", node.directory.appending("state"), "--log-target", "stderr",
        ]
        let plan = try ChildProcess.run(PackagePaths.binary, ["--plan", "--json"] + arguments)
        #expect(plan.status == 0, "stderr: \(plan.stderr)")
        let decoded = try Plan.decoder().decode(Plan.self, from: Data(plan.stdout.utf8))
        for verdict in decoded.volumes where verdict.podUID == uid {
            #expect(verdict.verdict == .keep)
            #expect(verdict.reasons.contains(.podAlive), "\(verdict.path): \(verdict.reasons)")
        }
        // Pods without a cgroup are judged as before.
        for expected in node.expectations where !expected.path.contains(uid) {
            let verdict = try #require(decoded.volumes.first { $0.path == expected.path })
            #expect(verdict.verdict.rawValue == expected.verdict, "\(expected.path): \(verdict.reasons)")
        }

        let once = try ChildProcess.run(PackagePaths.binary, ["--once"] + arguments)
        #expect([0, 3].contains(once.status), "stderr: \(once.stderr)")
        #expect(FileManager.default.fileExists(atPath: target.path), "a live pod's volume was deleted")
    }
}
