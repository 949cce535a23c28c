import Foundation
import Reaper
import ReaperCore
import Testing
import TestSupport

/// Limits (design §5.8), orphan pod directories, the reaper lock and safety
/// rule 1, on real trees.
@Suite("PlanExecutor: limits, orphans, lock, rule 1")
struct LimitsAndOrphansTests {
    @Test("most pod dirs orphaned: no orphan reaped, an alert; the terminated pod's volume still goes")
    func circuitBreaker() throws {
        let node = try TestNode("breaker")
        defer { node.remove() }
        let terminated = node.terminatedPod(1)
        let kept = try node.volume(terminated, "scratch")
        try node.fill(kept)
        var orphans: [String] = []
        for number in 10..<14 {
            let volume = try node.volume(TestNode.uid(number), "scratch")
            try node.fill(volume)
            orphans.append(volume)
        }
        try node.age()
        let before = try orphans.map(fingerprint)
        let plan = try node.plan()
        #expect(plan.alerts.map(\.code) == [.limitOrphanFraction])
        #expect(plan.orphanPodDirectories.isEmpty)

        let report = node.execute(plan)
        #expect(report.outcome(kept)?.action == .reaped)
        #expect(!exists(kept))
        for (volume, fingerprintBefore) in zip(orphans, before) {
            let outcome = try #require(report.outcome(volume))
            #expect(outcome.action == .refusedByLimits)
            #expect(outcome.reasons == [.limitOrphanFraction])
            #expect(try fingerprint(volume) == fingerprintBefore)
        }
        #expect(report.podDirectories.isEmpty)
    }

    @Test("maxReapsPerCycle 1 of 3 idle volumes: the most idle is reaped, the others refused by the limit")
    func maxReaps() throws {
        let node = try TestNode("maxreaps")
        defer { node.remove() }
        node.policy.limits.maxReapsPerCycle = 1
        node.runningPod(9)
        var volumes: [String] = []
        for (number, hours) in [(1, 3), (2, 5), (3, 4)] {
            let volume = try node.volume(node.terminatedPod(number, finishedAt: nil), "scratch")
            try node.fill(volume)
            try node.age(node.podDirectory(TestNode.uid(number)), secondsAgo: hours * 3600)
            volumes.append(volume)
        }
        let plan = try node.plan()
        #expect(plan.reaps.map(\.path) == [volumes[1]])

        let report = node.execute(plan)
        #expect(report.outcome(volumes[1])?.action == .reaped)
        #expect(!exists(volumes[1]))
        for volume in [volumes[0], volumes[2]] {
            #expect(report.outcome(volume)?.action == .refusedByLimits)
            #expect(report.outcome(volume)?.reasons == [.limitMaxReaps])
            #expect(exists(volume + "/sub/deeper/state"))
        }
    }

    /// An orphan pod directory as the kubelet leaves it, beside a running pod.
    func orphanNode(_ label: String) throws -> (TestNode, pod: String, volume: String) {
        let node = try TestNode(label)
        node.runningPod(1)
        let uid = TestNode.uid(7)
        let pod = node.podDirectory(uid)
        let volume = try node.volume(uid, "scratch")
        try node.fill(volume)
        try sh("""
            set -e; cd \(q(pod))
            mkdir -p containers/main plugins/kubernetes.io~empty-dir/scratch volume-subpaths/scratch/main
            echo terminated > containers/main/0b1c2d3e && echo '127.0.0.1 localhost' > etc-hosts
            """)
        try node.age()
        return (node, pod, volume)
    }

    @Test("an orphan's pod directory goes after its volumes: containers/, plugins/, etc-hosts, empty volume-subpaths/")
    func orphanPodDirectoryRemoved() throws {
        let (node, pod, volume) = try orphanNode("orphan")
        defer { node.remove() }
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.reasons == [.idle, .orphan].sorted())
        #expect(plan.orphanPodDirectories == [pod])
        let report = node.execute(plan)
        #expect(report.outcome(volume)?.action == .reaped)
        let directory = try #require(report.podDirectories.first)
        #expect(directory.path == pod)
        #expect(directory.removed, "\(directory.detail ?? "")")
        #expect(!exists(pod))
        #expect(exists(node.podDirectory(TestNode.uid(1))))
    }

    @Test("an orphan's pod directory is kept when volume-subpaths holds a file or volumeDevices/ exists",
          arguments: ["volume-subpaths/scratch/main/0", "volumeDevices/kubernetes.io~csi/pvc-1"])
    func orphanPodDirectoryKept(_ leftover: String) throws {
        let (node, pod, volume) = try orphanNode("orphan-kept")
        defer { node.remove() }
        if leftover.hasPrefix("volume-subpaths") {
            try sh("echo bind-target > \(q(pod + "/" + leftover))")
        } else {
            try sh("mkdir -p \(q(pod + "/" + leftover))")
        }
        try node.age()
        let report = node.execute(try node.plan())
        #expect(report.outcome(volume)?.action == .reaped)
        let directory = try #require(report.podDirectories.first)
        #expect(!directory.removed)
        #expect(directory.detail?.contains(leftover.split(separator: "/").first.map(String.init) ?? "") == true, "\(directory.detail ?? "")")
        #expect(exists(pod + "/" + leftover))
        #expect(exists(pod + "/containers/main/0b1c2d3e"))
        #expect(exists(pod + "/etc-hosts"))
    }

    @Test("an orphan's pod directory with a mount under plugins/ is kept, the mount intact",
          .enabled(if: isRoot, "needs root: mounts"))
    func orphanPodDirectoryMounted() throws {
        let (node, pod, volume) = try orphanNode("orphan-mount")
        defer { node.remove() }
        let mountPoint = pod + "/plugins/kubernetes.io~empty-dir/scratch"
        try sh("mount -t tmpfs -o size=1m tmpfs \(q(mountPoint)) && echo live > \(q(mountPoint))/f")
        let report = node.execute(try node.plan())
        #expect(report.outcome(volume)?.action == .reaped)
        let directory = try #require(report.podDirectories.first)
        #expect(!directory.removed)
        #expect(try isMountPoint(mountPoint))
        #expect(exists(mountPoint + "/f"))
        #expect(exists(pod + "/etc-hosts"))
    }

    @Test("two reapers at once: the second lock attempt is refused as held")
    func reaperLock() throws {
        let directory = try TemporaryDirectory("lock")
        defer { directory.remove() }
        let state = directory.appending("state")
        let first = try ReaperLock.acquire(stateDirectory: state)
        let error = #expect(throws: ReaperLockError.self) {
            _ = try ReaperLock.acquire(stateDirectory: state)
        }
        #expect(error?.isHeld == true)
        // Another process sees it too.
        #expect(try ChildProcess.shell("flock -xn \(q(first.path)) true").status != 0)
        var info = stat()
        #expect(stat(state, &info) == 0 && info.st_mode & 0o777 == 0o700)
        first.release()
        let again = try ReaperLock.acquire(stateDirectory: state)
        again.release()
    }

    @Test("safety rule 1: a hand-edited plan pointing outside <root>/pods/<uid>/volumes/<plugin>/<name> is refused")
    func handEditedPlan() throws {
        let node = try TestNode("rule1")
        defer { node.remove() }
        let uid = node.terminatedPod(1)
        node.runningPod(2)
        let volume = try node.volume(uid, "scratch")
        try node.fill(volume)
        let victim = node.outside + "/victim"
        try node.fill(victim)
        try sh("mkdir -p \(q(node.root))/pods/\(uid)/volumes/kubernetes.io~empty-dir/scratch2/x")
        try node.age()
        let plan = try node.plan()
        let template = try #require(plan.verdict(volume))
        #expect(template.verdict == .reap)
        let outsideBefore = try fingerprint(node.outside)
        let nodeBefore = try fingerprint(node.root)

        let forged = [
            victim,
            node.root + "/pods/../outside/victim",
            node.root + "/pods/\(uid)/volumes/kubernetes.io~empty-dir/scratch/sub",
            node.root + "/pods/\(uid)/volumes/kubernetes.io~empty-dir/..",
            node.root + "/pods/\(uid)/volumes/kubernetes.io~empty-dir/scratch/../../../../../../outside/victim",
            node.root + "/pods/\(uid)/volumes/kubernetes.io~empty-dir/scratch2/x",
            node.root + "/pods/\(uid)/containers/x/y",
            node.root + "/pods/not-a-uid/volumes/kubernetes.io~empty-dir/scratch",
            node.root + "/pods//volumes/kubernetes.io~empty-dir/scratch",
            node.root + "/../kubelet/pods/\(uid)/volumes/kubernetes.io~empty-dir/scratch",
            node.root + "/pods/\(uid)/volumes/kubernetes.io~empty-dir/scratch/",
            "/x",
            "",
        ]
        var edited = plan
        edited.volumes = forged.map { path in
            var verdict = template
            verdict.path = path
            return verdict
        }
        edited.orphanPodDirectories = [node.outside, node.root + "/pods/" + TestNode.uid(2), node.root + "/pods/\(uid)/..", node.root]
        let report = node.execute(edited)
        for path in forged {
            let outcome = try #require(report.outcome(path))
            #expect(outcome.action == .failed, "\(path): \(outcome.action)")
            #expect(outcome.reasons == [.inconclusive], "\(path)")
        }
        #expect(report.podDirectories.allSatisfy { !$0.removed })
        #expect(try fingerprint(node.outside) == outsideBefore)
        #expect(try fingerprint(node.root) == nodeBefore)
    }

    @Test("a pod directory swapped for a symlink to a look-alike tree outside: nothing outside touched")
    func podDirectorySymlink() throws {
        let node = try TestNode("poddir-link")
        defer { node.remove() }
        let uid = node.terminatedPod(1)
        node.runningPod(2)
        let volume = try node.volume(uid, "scratch")
        try node.fill(volume)
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)
        let lookAlike = node.outside + "/pod"
        try sh("mv \(q(node.podDirectory(uid))) \(q(lookAlike)) && ln -s \(q(lookAlike)) \(q(node.podDirectory(uid)))")
        let before = try fingerprint(node.outside)
        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action != .reaped)
        #expect(outcome.verdict.verdict == .keep)
        #expect(try fingerprint(node.outside) == before)
    }
}
