import Foundation
import NodeDiscovery
import Reaper
import ReaperCore
import Testing
import TestSupport

/// Issue 18, item 6 at the last check: with no kubelet pod cgroup tree to ask,
/// nothing says whether an orphan's pod still runs, so it is kept
/// (`liveness-unknown`); a pod the view lists as terminated still goes on the
/// view's word (its phase is final).
@Suite("PlanExecutor: no kubelet cgroup tree at the last check")
struct LivenessUnknownTests {
    @Test("planned as reap, but no kubelet tree at the last check: the orphan's volume and pod directory are kept as liveness-unknown; a terminated pod's volume goes")
    func orphanKeptWithoutTree() throws {
        let node = try TestNode("liveness-unknown")
        defer { node.remove() }
        node.runningPod(1)
        let terminated = node.terminatedPod(2)
        let finished = try node.volume(terminated, "cache")
        try node.fill(finished)
        let orphanUID = TestNode.uid(7)
        let orphan = try node.volume(orphanUID, "scratch")
        try node.fill(orphan)
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(orphan)?.verdict == .reap)
        #expect(plan.orphanPodDirectories == [node.podDirectory(orphanUID)])

        // A cgroup root with no kubelet tree in it (TestNode's own has one).
        try FileManager.default.createDirectory(atPath: node.directory.appending("wrong-cgroup/system.slice"), withIntermediateDirectories: true)
        var reaper = node.reaper
        reaper.podCgroups = PodCgroups(root: node.directory.appending("wrong-cgroup"), procRoot: node.directory.appending("no-proc"))
        usleep(20_000)
        let report = reaper.execute(plan: plan, currentPodView: { node.manifests() }, access: { [:] }, dryRun: false, logger: testLogger)
        let kept = try #require(report.outcome(orphan))
        #expect(kept.action == .keptAtLastCheck)
        #expect(kept.reasons == [.livenessUnknown])
        #expect(exists(orphan + "/sub/deeper/state"))
        #expect(exists(node.podDirectory(orphanUID)))
        #expect(report.podDirectories.allSatisfy { !$0.removed })
        #expect(report.outcome(finished)?.action == .reaped)
        #expect(!exists(finished))
    }
}
