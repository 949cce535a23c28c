import Foundation
import ReaperCore
import Testing
import TestSupport
@testable import ReaperAgent

/// Issue 18, item 15: a kept walk that a write the watcher cannot see made
/// stale (a write through a shared mapping changes mtime without an inotify
/// event) planned the volume as `reap` every cycle, kept at the last check
/// each time and listed as idle, until the next full walk. The last check's
/// word now reaches the cache and the served plan.
@Suite("daemon cycle: the last check corrects the scan cache", .serialized)
struct ScanCacheLastCheckTests {
    static func writeManifest(_ node: AgentHarness, uid: String, phase: String) throws {
        let item = """
            {"metadata": {"uid": "\(uid)", "name": "job-1", "namespace": "batch",
              "ownerReferences": [{"kind": "Job", "name": "job", "apiVersion": "batch/v1", "uid": "x"}]},
             "status": {"phase": "\(phase)"}}
            """
        try Data(#"{"kind": "PodList", "apiVersion": "v1", "items": [\#(item)]}"#.utf8)
            .write(to: URL(fileURLWithPath: node.configuration.manifests))
    }

    @Test("a volume kept at the last check is walked again in the next cycle and served as kept")
    func lastCheckKeepReachesCacheAndPlan() async throws {
        let uid = AgentHarness.uid(40)
        let node = try AgentHarness("scan-cache-last-check", pods: [(uid, "Running")])
        defer { node.remove() }
        let volume = try node.idleVolume(uid, "scratch")
        try await node.withWatcher {
            // Cycle 1: the pod runs; the walk (idle for 3h) is kept in the cache.
            let first = try await node.controller.reconcile(trigger: "test")
            #expect(first.verdict(volume)?.reasons == [.podRunning])
            // The pod finished; then a write through a shared mapping: mtime
            // moves, inotify says nothing.
            try Self.writeManifest(node, uid: uid, phase: "Succeeded")
            try sh("python3 -c 'import mmap; f = open(\"\(volume)/data\", \"r+b\"); m = mmap.mmap(f.fileno(), 0); m[0:1] = b\"D\"; m.flush()'")
            // Cycle 2 plans from the kept walk (idle) and the last check keeps it.
            let second = try await node.controller.reconcile(trigger: "test")
            let served = try #require(await node.controller.currentPlan())
            #expect(FileManager.default.fileExists(atPath: volume + "/data"))
            let kept = try #require(served.verdict(volume))
            #expect(kept.verdict == .keep, "the served plan lists a volume the last check kept as idle: \(kept.reasons) (cycle plan: \(second.verdict(volume)?.reasons ?? []))")
            // Cycle 3 walks it again: recent access, in the plan itself.
            let third = try await node.controller.reconcile(trigger: "test")
            let verdict = try #require(third.verdict(volume))
            #expect(verdict.verdict == .keep && verdict.reasons.contains(.recentAccess), "\(verdict.reasons)")
        }
    }
}
