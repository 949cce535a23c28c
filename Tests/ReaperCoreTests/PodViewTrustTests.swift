import Foundation
import ReaperCore
import Testing

/// Issue 18: a pod view that cannot vouch for absence makes no orphan. Each
/// test recreates one attack on the pure reconciler.
@Suite("Reconciler: pod views that can lie")
struct PodViewTrustTests {
    let orphan = Fixture.uid(15)
    let finished = Fixture.uid(3)
    var orphanPath: String { Fixture.volumePath(orphan, .emptyDir, "scratch") }
    var finishedPath: String { Fixture.volumePath(finished, .emptyDir, "scratch") }

    /// A confirmed orphan (sighted 10 minutes ago in another write) and a
    /// finished Job's pod, with the default confirmAfter.
    func node() -> NodeFixture {
        var node = NodeFixture()
        node.policy.orphans.confirmAfter = Policy.defaults.orphans.confirmAfter
        node.addVolume(uid: orphan)
        node.pods.append(Fixture.pod(finished, name: "job-3"))
        node.addVolume(uid: finished)
        node.orphanObservations = [orphan: Fixture.sighting(orphan, ago: 600, write: "write-1")]
        return node
    }

    @Test("the baseline: a view that vouches reaps the confirmed orphan")
    func baseline() throws {
        expect(try node().verdict(orphanPath), .reap, [.orphan, .idle])
    }

    // MARK: Item 1: the kubelet's /pods is a cache

    @Test("a source that cannot vouch (the kubelet's /pods) keeps every orphan and records no sighting; listed terminated pods still go")
    func kubeletCannotVouch() throws {
        var node = node()
        node.manifestsVouch = false
        let verdict = try node.verdict(orphanPath)
        expect(verdict, .keep, [.podSourceCannotVouch])
        #expect(verdict.orphan)
        #expect(node.plan().orphanPodDirectories.isEmpty)
        expect(try node.verdict(finishedPath), .reap, [.podTerminated, .idle])
        node.orphanObservations = [:]
        #expect(OrphanConfirmation.update(after: node.input).missing.isEmpty)
    }

    // MARK: Item 5: confirmation on the boot clock

    @Test("a wall-clock step does not shorten confirmAfter: 40 s apart on the wall, 2 s on the boot clock, is unconfirmed")
    func wallClockStep() throws {
        var node = node()
        node.policy.orphans.confirmAfter = 30
        node.orphanObservations = [orphan: OrphanObservation(
            podUID: orphan, firstMissingAt: Fixture.ago(40), firstMissingBoot: Fixture.bootAgo(2), snapshotFingerprint: "write-1"
        )]
        expect(try node.verdict(orphanPath), .keep, [.orphanUnconfirmed])
        // And a step backwards does not lengthen it past the boot clock's word.
        node.orphanObservations = [orphan: OrphanObservation(
            podUID: orphan, firstMissingAt: Fixture.ago(-3600), firstMissingBoot: Fixture.bootAgo(31), snapshotFingerprint: "write-1"
        )]
        expect(try node.verdict(orphanPath), .reap, [.orphan, .idle])
    }

    @Test("a sighting from another boot confirms nothing, and the pass starts it again")
    func reboot() throws {
        var node = node()
        node.orphanObservations = [orphan: OrphanObservation(
            podUID: orphan, firstMissingAt: Fixture.ago(86400),
            firstMissingBoot: BootInstant(bootID: "an-earlier-boot", seconds: 10), snapshotFingerprint: "write-1"
        )]
        expect(try node.verdict(orphanPath), .keep, [.orphanUnconfirmed])
        let update = OrphanConfirmation.update(after: node.input)
        #expect(update.forget == [orphan])
        #expect(update.missing == [Fixture.sighting(orphan, ago: 0, write: "write-2")])
    }

    @Test("a sighting stored before the boot clock was kept, or an unknown boot clock, confirms nothing")
    func unknownBootClock() throws {
        var node = node()
        node.orphanObservations = [orphan: OrphanObservation(
            podUID: orphan, firstMissingAt: Fixture.ago(86400), firstMissingBoot: nil, snapshotFingerprint: "write-1"
        )]
        expect(try node.verdict(orphanPath), .keep, [.orphanUnconfirmed])
        node = self.node()
        node.boot = nil
        expect(try node.verdict(orphanPath), .keep, [.orphanUnconfirmed])
        node.orphanObservations = [:]
        #expect(OrphanConfirmation.update(after: node.input).missing.isEmpty)
    }

    // MARK: Item 7: a view that suddenly loses pods

    /// `count` more pod directories whose pods the latest snapshot dropped.
    func dropping(_ count: Int, from node: inout NodeFixture) {
        for number in 0..<count {
            let uid = Fixture.uid(100 + number)
            node.addVolume(uid: uid)
            node.droppedWithoutDelete.insert(uid)
        }
    }

    @Test("more than maxPodsLost dropped at once holds every orphan, also one confirmed before, with an alert")
    func viewShrankByCount() throws {
        var node = node()
        node.policy.limits.maxOrphanFraction = 1
        node.policy.limits.maxPodsLost = 20
        dropping(21, from: &node)
        expectKept(try node.verdict(orphanPath), because: .podViewShrank)
        let plan = node.plan()
        #expect(plan.alerts.map(\.code) == [.podViewShrank])
        #expect(plan.orphanPodDirectories.isEmpty)
        #expect(plan.reaps.allSatisfy { !$0.orphan })
        expect(try node.verdict(finishedPath), .reap, [.podTerminated, .idle])
        // No sighting is recorded from the suspect view.
        node.orphanObservations = [:]
        #expect(OrphanConfirmation.update(after: node.input).missing.isEmpty)
    }

    @Test("at most maxPodsLost dropped, and within maxOrphanFraction: no hold")
    func viewShrankWithinLimits() throws {
        var node = node()
        node.policy.limits.maxOrphanFraction = 1
        dropping(20, from: &node)
        #expect(!node.plan().alerts.contains { $0.code == .podViewShrank })
        expect(try node.verdict(orphanPath), .reap, [.orphan, .idle])
    }

    @Test("dropped pods whose directories are gone do not count; a fraction over maxOrphanFraction does")
    func viewShrankByFraction() throws {
        var node = node()
        node.droppedWithoutDelete = Set((200..<260).map(Fixture.uid))
        #expect(!node.plan().alerts.contains { $0.code == .podViewShrank })
        node.policy.limits.maxOrphanFraction = 0.5
        dropping(3, from: &node)
        // 3 of 5 pod directories dropped at once: over half.
        expectKept(try node.verdict(orphanPath), because: .podViewShrank)
    }

    @Test("the breaker counts pods missing from the view, not only those about to go: kept for pod-alive still counts")
    func breakerCountsLoss() throws {
        var node = node()
        var alive: Set<String> = []
        for number in 0..<4 {
            let uid = Fixture.uid(300 + number)
            node.addVolume(uid: uid)
            alive.insert(uid)
        }
        node.liveness = PodLiveness(alive: alive)
        // 5 of 6 directories missing from the view; only one would be reaped.
        let plan = node.plan()
        #expect(plan.alerts.map(\.code) == [.limitOrphanFraction])
        expectKept(try node.verdict(orphanPath), because: .limitOrphanFraction)
        #expect(plan.orphanPodDirectories.isEmpty)
    }

    // MARK: Item 6: liveness fails closed for orphans

    @Test("no kubelet cgroup tree: orphans are kept (liveness-unknown); a terminated pod the view lists still goes")
    func livenessTreeMissing() throws {
        var node = node()
        node.liveness = PodLiveness(treeMissing: "no kubepods tree under /sys/fs/cgroup")
        expect(try node.verdict(orphanPath), .keep, [.livenessUnknown])
        #expect(node.plan().orphanPodDirectories.isEmpty)
        expect(try node.verdict(finishedPath), .reap, [.podTerminated, .idle])
    }
}
