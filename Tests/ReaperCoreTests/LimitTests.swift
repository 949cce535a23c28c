import Foundation
import ReaperCore
import Testing

/// Design §5.8: at most maxReapsPerCycle reaps, and the orphan circuit breaker.
@Suite("Reconciler: limits")
struct LimitTests {
    @Test("limits.maxReapsPerCycle: the most idle go first, the rest keep with limit-max-reaps")
    func maxReaps() throws {
        var node = NodeFixture()
        node.policy.limits.maxReapsPerCycle = 2
        // Four finished pods, idle 2h..5h (finishedAt older than the mtimes), listed in no idle order.
        let idleHours = [3, 5, 2, 4]
        var paths: [Int: String] = [:]
        for (index, hours) in idleHours.enumerated() {
            let uid = Fixture.uid(index + 1)
            node.pods.append(Fixture.pod(uid, finishedAt: Fixture.ago(10 * 3600)))
            paths[hours] = node.addVolume(uid: uid, scan: Fixture.scan(idle: TimeInterval(hours) * 3600))
        }
        // A kept volume does not use up the limit.
        node.pods.append(Fixture.pod(Fixture.uid(9), phase: "Running"))
        node.addVolume(uid: Fixture.uid(9), scan: Fixture.scan(idle: 9 * 3600))

        let plan = node.plan()
        expect(try node.verdict(paths[5]), .reap, [.podTerminated, .idle])
        expect(try node.verdict(paths[4]), .reap, [.podTerminated, .idle])
        expect(try node.verdict(paths[3]), .keep, [.limitMaxReaps])
        expect(try node.verdict(paths[2]), .keep, [.limitMaxReaps])
        #expect(plan.summary.reap == 2)
        #expect(plan.summary.keep == 3)
        #expect(plan.reaps.count == 2)
    }

    @Test("limits.maxReapsPerCycle 0 reaps nothing; a large limit does not bite")
    func maxReapsEdges() throws {
        var node = NodeFixture(pods: [Fixture.pod(Fixture.uid(1))])
        node.policy.limits.maxReapsPerCycle = 0
        expect(try node.verdict(), .keep, [.limitMaxReaps])
        node.policy.limits.maxReapsPerCycle = 1
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("a capped orphan keeps its pod directory too")
    func maxReapsKeepsOrphanDirectory() throws {
        var node = NodeFixture()
        node.pods = [Fixture.pod(Fixture.uid(1), finishedAt: Fixture.ago(10 * 3600))]
        node.addVolume(uid: Fixture.uid(1), scan: Fixture.scan(idle: 5 * 3600))
        let orphanPath = node.addVolume(uid: Fixture.uid(2), scan: Fixture.scan(idle: 2 * 3600))
        node.policy.limits.maxReapsPerCycle = 1
        node.maxOrphanFractionOff()
        let plan = node.plan()
        expect(try node.verdict(orphanPath), .keep, [.limitMaxReaps])
        #expect(plan.orphanPodDirectories.isEmpty)
    }

    /// `orphans` reapable orphan directories and `finished` terminated pod directories.
    func breakerNode(orphans: Int, finished: Int, others: Int = 0) -> (NodeFixture, orphanPaths: [String], finishedPaths: [String]) {
        var node = NodeFixture()
        var orphanPaths: [String] = [], finishedPaths: [String] = []
        for index in 0..<orphans { orphanPaths.append(node.addVolume(uid: Fixture.uid(100 + index))) }
        for index in 0..<finished {
            let uid = Fixture.uid(200 + index)
            node.pods.append(Fixture.pod(uid))
            finishedPaths.append(node.addVolume(uid: uid))
        }
        for index in 0..<others {
            let uid = Fixture.uid(300 + index)
            node.pods.append(Fixture.pod(uid, phase: "Running"))
            node.addVolume(uid: uid)
        }
        return (node, orphanPaths, finishedPaths)
    }

    @Test("more than limits.maxOrphanFraction orphans: none is reaped, an alert; terminated pods still go")
    func orphanFractionExceeded() throws {
        // 3 of 5 pod directories (60% > 50%) would go as orphans.
        let (node, orphanPaths, finishedPaths) = breakerNode(orphans: 3, finished: 2)
        let plan = node.plan()
        for path in orphanPaths { expect(try node.verdict(path), .keep, [.limitOrphanFraction]) }
        for path in finishedPaths { expect(try node.verdict(path), .reap, [.podTerminated, .idle]) }
        #expect(plan.orphanPodDirectories.isEmpty)
        let alert = try #require(plan.alerts.first)
        #expect(plan.alerts.count == 1)
        #expect(alert.code == .limitOrphanFraction)
        #expect(alert.message.contains("3 of 5"), "\(alert.message)")
        #expect(plan.summary.reap == 2)
    }

    @Test("exactly limits.maxOrphanFraction orphans is allowed")
    func orphanFractionAtLimit() throws {
        // 2 of 4 pod directories: 50%.
        let (node, orphanPaths, _) = breakerNode(orphans: 2, finished: 1, others: 1)
        let plan = node.plan()
        for path in orphanPaths { expect(try node.verdict(path), .reap, [.orphan, .idle]) }
        #expect(plan.alerts.isEmpty)
        #expect(plan.orphanPodDirectories.count == 2)
    }

    @Test("the orphan fraction comes from the policy")
    func orphanFractionPolicy() throws {
        let built = breakerNode(orphans: 1, finished: 3)
        var node = built.0
        let orphanPaths = built.orphanPaths
        expect(try node.verdict(orphanPaths[0]), .reap, [.orphan, .idle])
        node.policy.limits.maxOrphanFraction = 0.2  // 1 of 4 is 25%
        expect(try node.verdict(orphanPaths[0]), .keep, [.limitOrphanFraction])
        #expect(node.plan().alerts.map(\.code) == [.limitOrphanFraction])
    }

    @Test("terminated reaps do not count towards the orphan fraction")
    func terminatedDoNotCount() throws {
        // 2 orphans, 3 finished: 40% orphans, though 100% of directories would be reaped.
        let (node, orphanPaths, _) = breakerNode(orphans: 2, finished: 3)
        for path in orphanPaths { expect(try node.verdict(path), .reap, [.orphan, .idle]) }
        #expect(node.plan().alerts.isEmpty)
    }

    @Test("orphans kept for another reason still count towards the orphan fraction: the breaker counts what the view lost (issue 18, item 7)")
    func keptOrphansCount() throws {
        let built = breakerNode(orphans: 2, finished: 1)
        var node = built.0
        let orphanPaths = built.orphanPaths
        // One of the two orphans has a recent access: only 1 of 3 would go,
        // but 2 of 3 pod directories are missing from the view.
        node.directories[0].volumes[0].scan = Fixture.scan(idle: 60)
        expect(try node.verdict(orphanPaths[0]), .keep, [.recentAccess])
        expect(try node.verdict(orphanPaths[1]), .keep, [.limitOrphanFraction])
        #expect(node.plan().alerts.map(\.code) == [.limitOrphanFraction])
    }
}
