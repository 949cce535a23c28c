import Foundation
import ReaperCore
import Testing
import TestSupport
@testable import ReaperAgent

/// The liveness cross-check in a real reap cycle: manifests say Succeeded, the
/// node's cgroups say the pod runs. A live pod is never reaped.
@Suite("Liveness cross-check: real cgroups and a real reap cycle", .timeLimit(.minutes(1)))
struct LivenessCycleTests {
    @Test("pod-alive keeps the volume at the last check (cgroup populated after planning) and in the plan; once the process is gone it is reaped",
          arguments: CgroupSandbox.Version.allCases)
    func liveProcessKeeps(_ version: CgroupSandbox.Version) async throws {
        let sandbox: CgroupSandbox
        do {
            sandbox = try CgroupSandbox(version)
        } catch let unavailable as SandboxUnavailable {
            print("skipped: cgroup \(version) liveness cycle test: \(unavailable)")
            return
        }
        defer { sandbox.remove() }
        let uid = AgentHarness.uid(7)
        let node = try AgentHarness("liveness-\(version)", pods: [(uid, "Succeeded")], cgroupRoot: sandbox.root)
        defer { node.remove() }
        let volume = try node.idleVolume(uid, "scratch")
        // The pod's cgroups exist but are empty: not alive.
        let container = try sandbox.makePod(uid, driver: .systemd)
        let sleeper = try Sleeper()
        defer { sleeper.kill() }

        try await node.withWatcher {
            // 1. Planned as idle; the pod's container starts before the first deletion.
            let first = try node.reapCycle { read in
                if read == 2 { try? sandbox.move(sleeper.pid, into: container) }
            }
            #expect(first.snapshot.plan.verdict(volume)?.verdict == .reap, "an empty cgroup is not alive")
            let kept = try #require(first.report.outcome(volume))
            #expect(kept.action == .keptAtLastCheck)
            #expect(kept.reasons == [.podAlive])
            #expect(FileManager.default.fileExists(atPath: volume + "/data"))

            // 2. Still running: the plan says so.
            let second = try node.reapCycle()
            let verdict = try #require(second.snapshot.plan.verdict(volume))
            #expect(verdict.verdict == .keep)
            #expect(verdict.reasons.contains(.podAlive))
            #expect(FileManager.default.fileExists(atPath: volume + "/data"))

            // 3. The process is gone; the cgroup stays, empty: reaped.
            sleeper.kill()
            let third = try node.reapCycle()
            #expect(third.report.outcome(volume)?.action == .reaped)
            #expect(!FileManager.default.fileExists(atPath: volume))
        }
    }
}
