import Foundation
import Reaper
import ReaperCore
import Testing
import TestSupport

/// `PlanExecutor.execute` on real trees: what changes between the plan and
/// the deletion is seen at the last check and keeps the volume (design §5.6).
@Suite("PlanExecutor: the last check")
struct LastCheckTests {
    /// One terminated pod with an idle emptyDir, and a running pod beside it.
    func idleVolume(_ label: String) throws -> (TestNode, String) {
        let node = try TestNode(label)
        let uid = node.terminatedPod(1)
        node.runningPod(2)
        let volume = try node.volume(uid, "scratch")
        try node.fill(volume)
        return (node, volume)
    }

    @Test("an idle emptyDir of a finished pod is reaped; a dry run deletes nothing")
    func reapsIdleVolume() throws {
        let (node, volume) = try idleVolume("reap")
        defer { node.remove() }
        try sh("ln -s \(q(node.outside)) \(q(volume))/sub/out && echo keep > \(q(node.outside))/precious")
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)

        let dry = node.execute(plan, dryRun: true)
        #expect(dry.outcome(volume)?.action == .wouldReap)
        #expect(exists(volume + "/sub/deeper/state"))

        let report = node.execute(plan)
        let outcome = try #require(report.outcome(volume))
        #expect(outcome.action == .reaped, "\(outcome.reasons) \(outcome.detail ?? "")")
        #expect(outcome.stats.filesRemoved == 8, "7 entries and the root")
        #expect(outcome.stats.bytesFreed >= 65536)
        #expect(!exists(volume))
        #expect(exists(node.outside + "/precious"))
        // The plugin directory and the pod directory of a listed pod stay.
        #expect(exists(node.podDirectory(TestNode.uid(1)) + "/volumes/kubernetes.io~empty-dir"))
        #expect(report.podDirectories.isEmpty)
    }

    @Test("a tmpfs mounted inside after the plan: kept as mounted, nothing deleted",
          .enabled(if: isRoot, "needs root: mounts"))
    func tmpfsAfterPlan() throws {
        let (node, volume) = try idleVolume("tmpfs-late")
        defer { node.remove() }
        try sh("mkdir \(q(volume))/sub/mnt")
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)
        try sh("mount -t tmpfs -o size=1m tmpfs \(q(volume))/sub/mnt && echo live > \(q(volume))/sub/mnt/data")
        let before = try fingerprint(volume)

        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons.contains(.mounted), "\(outcome.reasons)")
        #expect(try fingerprint(volume) == before, "nothing at all was deleted")
        #expect(try isMountPoint(volume + "/sub/mnt"))
    }

    @Test("a same-file-system bind mount inside, hidden from mountinfo: statx finds it, nothing deleted",
          .enabled(if: isRoot, "needs root: mounts"))
    func hiddenBindMount() throws {
        let (node, volume) = try idleVolume("bind")
        defer { node.remove() }
        try sh("mkdir -p \(q(volume))/sub/deeper/mnt \(q(node.outside))/source && echo 'live data' > \(q(node.outside))/source/f")
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)
        try sh("mount --bind \(q(node.outside))/source \(q(volume))/sub/deeper/mnt")
        // Only statx's mount-root attribute can tell: the table no longer lists it.
        node.mountInfoPath = try node.mountInfoHidingNodeMounts()
        let before = try fingerprint(volume)
        let sourceBefore = try fingerprint(node.outside)

        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons.contains(.mounted), "\(outcome.reasons)")
        #expect(try fingerprint(volume) == before)
        #expect(try fingerprint(node.outside) == sourceBefore)

        // And a fresh plan on the same tree keeps it too.
        let again = try node.plan()
        #expect(again.verdict(volume)?.reasons.contains(.mounted) == true)
    }

    @Test("a directory swapped for a symlink to an outside directory after the plan: nothing outside touched")
    func swappedForSymlink() throws {
        let (node, volume) = try idleVolume("swap")
        defer { node.remove() }
        try sh("mkdir -p \(q(node.outside))/target/inner && echo precious > \(q(node.outside))/target/inner/file && head -c 4096 /dev/urandom > \(q(node.outside))/target/blob")
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)
        let away = node.directory.appending("away")
        try sh("mv \(q(volume))/sub \(q(away)) && ln -s \(q(node.outside))/target \(q(volume))/sub")
        let before = try fingerprint(node.outside)

        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(try fingerprint(node.outside) == before)
        #expect(exists(away + "/deeper/state"))
        // The rename changed the volume directory: activity, kept.
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons.contains(.accessedDuringReap), "\(outcome.reasons)")
        #expect(exists(volume + "/sub"))
    }

    @Test("a swap with old timestamps is reaped: the symlink alone goes, its target stays")
    func swappedWithOldTimes() throws {
        let (node, volume) = try idleVolume("swap-old")
        defer { node.remove() }
        try sh("mkdir -p \(q(node.outside))/target && echo precious > \(q(node.outside))/target/file")
        try node.age()
        let plan = try node.plan()
        let away = node.directory.appending("away")
        try sh("mv \(q(volume))/sub \(q(away)) && ln -s \(q(node.outside))/target \(q(volume))/sub")
        try node.age(volume)
        let before = try fingerprint(node.outside)

        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .reaped, "\(outcome.reasons) \(outcome.detail ?? "")")
        #expect(!exists(volume))
        #expect(try fingerprint(node.outside) == before)
        #expect(exists(node.outside + "/target/file"))
    }

    @Test("a writer appending during the reap keeps the volume (accessed-during-reap)")
    func writerDuringReap() throws {
        let (node, volume) = try idleVolume("writer")
        defer { node.remove() }
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)
        let log = volume + "/sub/log"
        let writer = try Background("while true; do echo x >> \(q(log)); done")
        defer { writer.stop() }
        #expect(eventually { ((try? FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? 0) > 10 })

        let outcome = try #require(node.execute(plan).outcome(volume))
        writer.stop()
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons.contains(.accessedDuringReap), "\(outcome.reasons)")
        #expect(outcome.verdict.verdict == .keep)
        for file in ["data.bin", "sub/app.log", "sub/deeper/state", "sub/pipe", "sub/log"] {
            #expect(exists(volume + "/" + file), "\(file)")
        }
    }

    @Test("a flock taken on a directory inside after the plan keeps it (lock-held), nothing deleted")
    func heldLock() throws {
        let (node, volume) = try idleVolume("flock")
        defer { node.remove() }
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)
        // flock(1) on a descriptor the process keeps across exec: stopping it frees the lock.
        let holder = try Background("exec 9<\(q(volume + "/sub/deeper")) && flock -x -w 10 9 && exec sleep 30")
        defer { holder.stop() }
        #expect(eventually { isFlockHeld(volume + "/sub/deeper") })
        let before = try fingerprint(volume)

        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons.contains(.lockHeld), "\(outcome.reasons)")
        #expect(try fingerprint(volume) == before)

        // Released: the next cycle may reap it.
        holder.stop()
        let next = node.execute(try node.plan())
        #expect(next.outcome(volume)?.action == .reaped)
    }

    @Test("an immutable file deep inside: the reap fails, is reported naming the file, the file stays")
    func immutableFile() throws {
        let (node, volume) = try idleVolume("immutable")
        defer { node.remove() }
        try node.age()
        let plan = try node.plan()
        let stuck = volume + "/sub/deeper/state"
        let chattr = try ChildProcess.shell("chattr +i \(q(stuck))")
        try #require(chattr.status == 0, "chattr +i not supported here: \(chattr.stderr)")
        defer { _ = try? ChildProcess.shell("chattr -i \(q(stuck))") }

        let report = node.execute(plan)
        let outcome = try #require(report.outcome(volume))
        // Whatever came before it in directory order is gone: a partial reap.
        #expect(outcome.action == (outcome.stats.filesRemoved > 0 ? .partiallyReaped : .failed))
        #expect(outcome.reasons == [.inconclusive])
        #expect(outcome.verdict.verdict == .keep)
        #expect(outcome.detail?.contains(stuck) == true, "\(outcome.detail ?? "no detail")")
        #expect(exists(stuck))
        #expect(exists(volume))
        #expect(report.reaped.isEmpty)
    }

    @Test("the pod listed as Running again by the fresh manifests: kept (pod-state-changed)")
    func podRestarted() throws {
        let (node, volume) = try idleVolume("restarted")
        defer { node.remove() }
        try node.age()
        let plan = try node.plan()
        let uid = TestNode.uid(1)
        var manifests = node.manifests()
        manifests.pods = manifests.pods.map { pod in
            var pod = pod
            if pod.uid == uid { pod.phase = "Running" }
            return pod
        }
        let report = node.reaper.execute(plan: plan, currentPodView: { manifests }, access: { [:] }, dryRun: false, logger: testLogger)
        let outcome = try #require(report.outcome(volume))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons.contains(.podStateChanged))
        #expect(exists(volume + "/data.bin"))
    }

    @Test("an access record newer than the plan keeps it")
    func accessRecordedSincePlan() throws {
        let (node, volume) = try idleVolume("access")
        defer { node.remove() }
        try node.age()
        let plan = try node.plan()
        let report = node.reaper.execute(
            plan: plan, currentPodView: { node.manifests() },
            access: { [volume: AccessRecord(lastAccess: Date(), source: .inotify)] }, dryRun: false, logger: testLogger
        )
        #expect(report.outcome(volume)?.reasons.contains(.accessedDuringReap) == true)
        #expect(exists(volume + "/data.bin"))
    }

    @Test("access times unreadable at the last check (a store that fails): kept inconclusive, nothing deleted")
    func accessUnreadable() throws {
        let (node, volume) = try idleVolume("access-nil")
        defer { node.remove() }
        try node.age()
        let plan = try node.plan()
        let before = try fingerprint(volume)
        let report = node.reaper.execute(plan: plan, currentPodView: { node.manifests() }, access: { nil }, dryRun: false, logger: testLogger)
        let outcome = try #require(report.outcome(volume))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons == [.inconclusive])
        #expect(try fingerprint(volume) == before)
    }
}

/// Issue 21, item 1: the last check's reason mapping was a hand-kept set in
/// the reaper that missed `pod-source-unsynced` when it was added; reasons
/// are now classified once (`Reason.category`).
@Suite("PlanExecutor: the last check classifies every reason")
struct LastCheckClassificationTests {
    @Test("a pod source that turns unsynced between the plan and the last check keeps its orphans with pod-source-unsynced")
    func unsyncedAtLastCheck() throws {
        let node = try TestNode("unsynced-last-check")
        defer { node.remove() }
        node.runningPod(2)
        let orphan = try node.volume(TestNode.uid(9), "scratch")
        try node.fill(orphan)
        try node.age()
        let plan = try node.plan()
        try #require(plan.verdict(orphan)?.reasons == [.orphan, .idle])
        var unsynced = node.manifests()
        unsynced.synced = false
        unsynced.errors = [ManifestError(file: "https://10.0.0.1:6443/api/v1/pods", message: "watch cut in the middle of an event")]
        usleep(20_000)
        let report = node.reaper.execute(plan: plan, currentPodView: { unsynced }, access: { [:] }, dryRun: false, logger: testLogger)
        let outcome = try #require(report.outcome(orphan))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons == [.podSourceUnsynced, .podStateChanged], "\(outcome.reasons)")
        #expect(FileManager.default.fileExists(atPath: orphan + "/data.bin"))
    }

    @Test("every reason that keeps and can come from the pod's or the view's side says pod-state-changed at the last check")
    func everyViewReasonMaps() {
        for reason in Reason.allCases {
            switch reason.category {
            case .pod, .view: #expect(reason.atLastCheck == .podStateChanged, "\(reason)")
            case .access: #expect(reason.atLastCheck == .accessedDuringReap, "\(reason)")
            default: #expect(reason.atLastCheck == nil, "\(reason)")
            }
            #expect(reason.keeps == (reason.category != .reap))
        }
    }
}
