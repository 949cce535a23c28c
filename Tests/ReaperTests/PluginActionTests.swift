import Foundation
import Reaper
import ReaperCore
import Testing
import TestSupport

/// Per-plugin actions (design §5.5): CSI and network volumes only lose empty,
/// unmounted directories; CSI's `vol_data.json` only after `mount/`; opted-in
/// mounts of local kinds are plainly unmounted first.
@Suite("PlanExecutor: per-plugin actions")
struct PluginActionTests {
    static let csi = "kubernetes.io~csi"
    static let nfs = "kubernetes.io~nfs"

    func node(_ label: String) throws -> (TestNode, String) {
        let node = try TestNode(label)
        let uid = node.terminatedPod(1)
        node.runningPod(2)
        return (node, uid)
    }

    /// A CSI volume as the kubelet leaves it: `mount/` and `vol_data.json`.
    func csiVolume(_ node: TestNode, _ uid: String, _ name: String) throws -> String {
        let volume = try node.volume(uid, name, plugin: Self.csi)
        try sh("mkdir \(q(volume))/mount && echo '{\"driverName\":\"ebs.csi.aws.com\"}' > \(q(volume))/vol_data.json")
        return volume
    }

    @Test("CSI with an empty mount/ and vol_data.json: all of it goes")
    func csiEmpty() throws {
        let (node, uid) = try node("csi-empty")
        defer { node.remove() }
        let volume = try csiVolume(node, uid, "pvc-empty")
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)
        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .reaped, "\(outcome.reasons) \(outcome.detail ?? "")")
        #expect(outcome.stats.filesRemoved == 3)
        #expect(!exists(volume))
    }

    @Test("CSI with data in mount/: kept not-empty, vol_data.json still there")
    func csiWithData() throws {
        let (node, uid) = try node("csi-data")
        defer { node.remove() }
        let volume = try csiVolume(node, uid, "pvc-data")
        try sh("mkdir -p \(q(volume))/mount/db && echo row > \(q(volume))/mount/db/table")
        try node.age()
        let before = try fingerprint(volume)
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.reasons == [.notEmpty])
        _ = node.execute(plan)
        #expect(try fingerprint(volume) == before)
    }

    @Test("CSI data appearing in mount/ after the plan: kept at the last check, vol_data.json still there")
    func csiDataAfterPlan() throws {
        let (node, uid) = try node("csi-late")
        defer { node.remove() }
        let volume = try csiVolume(node, uid, "pvc-late")
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)
        try sh("echo row > \(q(volume))/mount/table")
        try node.age(volume)
        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons.contains(.notEmpty), "\(outcome.reasons)")
        #expect(exists(volume + "/vol_data.json"))
        #expect(exists(volume + "/mount/table"))
    }

    @Test("CSI whose mount/ cannot be removed: vol_data.json is not touched (it goes only after mount/)")
    func csiOrdering() throws {
        let (node, uid) = try node("csi-order")
        defer { node.remove() }
        let volume = try csiVolume(node, uid, "pvc-order")
        try node.age()
        let plan = try node.plan()
        // Immutable: the rescan cannot see it (mtime unchanged), the rmdir fails.
        let chattr = try ChildProcess.shell("chattr +i \(q(volume))/mount")
        try #require(chattr.status == 0, "chattr +i not supported here: \(chattr.stderr)")
        defer { _ = try? ChildProcess.shell("chattr -i \(q(volume))/mount") }
        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action != .reaped)
        #expect(outcome.detail?.contains(volume + "/mount") == true, "\(outcome.detail ?? "no detail")")
        #expect(exists(volume + "/vol_data.json"))
        #expect(exists(volume + "/mount"))
    }

    @Test("CSI with a tmpfs on mount/: kept mounted, even with tmpfs in volumes.unmount; vol_data.json still there",
          .enabled(if: isRoot, "needs root: mounts"))
    func csiMounted() throws {
        let (node, uid) = try node("csi-mounted")
        defer { node.remove() }
        node.policy.volumes.unmount = ["tmpfs"]
        let early = try csiVolume(node, uid, "pvc-early")
        let late = try csiVolume(node, uid, "pvc-late")
        try sh("mount -t tmpfs -o size=1m tmpfs \(q(early))/mount && echo live > \(q(early))/mount/data")
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(early)?.reasons.contains(.mounted) == true)
        #expect(plan.verdict(late)?.verdict == .reap)
        try sh("mount -t tmpfs -o size=1m tmpfs \(q(late))/mount && echo live > \(q(late))/mount/data")

        let report = node.execute(plan)
        let outcome = try #require(report.outcome(late))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons.contains(.mounted), "\(outcome.reasons)")
        #expect(outcome.unmounted.isEmpty, "unmounting CSI volumes is the kubelet's job")
        for volume in [early, late] {
            #expect(try isMountPoint(volume + "/mount"))
            #expect(exists(volume + "/vol_data.json"))
            #expect(try String(contentsOfFile: volume + "/mount/data", encoding: .utf8) == "live\n")
        }
    }

    @Test("nfs-like plugin: an empty directory is rmdir'd, a non-empty one kept")
    func networkPlugin() throws {
        let (node, uid) = try node("nfs")
        defer { node.remove() }
        let empty = try node.volume(uid, "archive", plugin: Self.nfs)
        let full = try node.volume(uid, "reports", plugin: Self.nfs)
        let late = try node.volume(uid, "late", plugin: Self.nfs)
        try sh("echo stale > \(q(full))/report.csv")
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(full)?.reasons == [.notEmpty])
        #expect(plan.verdict(late)?.verdict == .reap)
        try sh("echo arrived > \(q(late))/file")
        try node.age(late)

        let report = node.execute(plan)
        #expect(report.outcome(empty)?.action == .reaped)
        #expect(!exists(empty))
        #expect(try String(contentsOfFile: full + "/report.csv", encoding: .utf8) == "stale\n")
        let lateOutcome = try #require(report.outcome(late))
        #expect(lateOutcome.action == .keptAtLastCheck)
        #expect(lateOutcome.reasons.contains(.notEmpty))
        #expect(exists(late + "/file"))
    }

    /// An emptyDir with a tmpfs at its root (`medium: Memory`), all old.
    func memoryVolume(_ node: TestNode, _ uid: String, _ name: String) throws -> String {
        let volume = try node.volume(uid, name)
        try node.age()
        try sh("mount -t tmpfs -o size=1m tmpfs \(q(volume))")
        try node.fill(volume)
        try node.age(volume)
        return volume
    }

    @Test("volumes.unmount [tmpfs]: a memory emptyDir is plainly unmounted, then removed",
          .enabled(if: isRoot, "needs root: mounts"),
          .enabled(if: inHostMountNamespace, "needs the host mount namespace: /proc/1/ns/mnt unreadable or not ours"))
    func unmountThenRemove() throws {
        let (node, uid) = try node("unmount")
        defer { node.remove() }
        node.policy.volumes.unmount = ["tmpfs"]
        let volume = try memoryVolume(node, uid, "ramdisk")
        let plan = try node.plan()
        let verdict = try #require(plan.verdict(volume))
        #expect(verdict.verdict == .reap)
        #expect(verdict.reasons.contains(.willUnmount))

        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .reaped, "\(outcome.reasons) \(outcome.detail ?? "")")
        #expect(outcome.unmounted == [volume])
        #expect(try !isMountPoint(volume))
        #expect(!exists(volume))
    }

    @Test("volumes.unmount [tmpfs] outside the host mount namespace: refused, kept mounted, contents intact",
          .enabled(if: isRoot, "needs root: mounts"),
          .enabled(if: !inHostMountNamespace, "runs only where /proc/1/ns/mnt is not our mount namespace"))
    func unmountRefusedOutsideHostNamespace() throws {
        let (node, uid) = try node("unmount-ns")
        defer { node.remove() }
        node.policy.volumes.unmount = ["tmpfs"]
        let volume = try memoryVolume(node, uid, "ramdisk")
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.reasons.contains(.willUnmount) == true)
        let before = try fingerprint(volume)
        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons == [.mounted])
        #expect(outcome.detail?.contains("mount namespace") == true, "\(outcome.detail ?? "no detail")")
        #expect(outcome.unmounted.isEmpty)
        #expect(try isMountPoint(volume))
        #expect(try fingerprint(volume) == before)
    }

    @Test("without the opt-in, the same memory emptyDir is kept mounted",
          .enabled(if: isRoot, "needs root: mounts"))
    func noUnmountByDefault() throws {
        let (node, uid) = try node("no-unmount")
        defer { node.remove() }
        let volume = try memoryVolume(node, uid, "ramdisk")
        let before = try fingerprint(volume)
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.reasons == [.mounted])
        _ = node.execute(plan)
        #expect(try isMountPoint(volume))
        #expect(try fingerprint(volume) == before)
    }

    @Test("volumes.unmount [tmpfs] with a file held open inside: EBUSY keeps it mounted",
          .enabled(if: isRoot, "needs root: mounts"))
    func busyMount() throws {
        let (node, uid) = try node("ebusy")
        defer { node.remove() }
        node.policy.volumes.unmount = ["tmpfs"]
        let volume = try memoryVolume(node, uid, "ramdisk")
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap)
        let holder = try Background("exec 3<\(q(volume + "/data.bin")) && exec sleep 60")
        defer { holder.stop() }
        let pid = holder.process.processIdentifier
        #expect(eventually { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/3")) == volume + "/data.bin" })
        let before = try fingerprint(volume)

        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .keptAtLastCheck)
        #expect(outcome.reasons == [.mounted])
        if inHostMountNamespace {
            #expect(outcome.detail?.contains("umount") == true, "\(outcome.detail ?? "no detail")")
        }
        #expect(outcome.unmounted.isEmpty)
        #expect(try isMountPoint(volume), "never lazily or forcibly unmounted")
        #expect(try fingerprint(volume) == before)
        holder.stop()
    }

    @Test("volumes.unmount [tmpfs] with a bind mount beside the tmpfs: kept, nothing unmounted",
          .enabled(if: isRoot, "needs root: mounts"))
    func mixedMounts() throws {
        let (node, uid) = try node("mixed")
        defer { node.remove() }
        node.policy.volumes.unmount = ["tmpfs"]
        let volume = try node.volume(uid, "mixed")
        try sh("mkdir -p \(q(volume))/ram \(q(volume))/bind \(q(node.outside))/src && echo live > \(q(node.outside))/src/f")
        try node.age()
        try sh("mount -t tmpfs -o size=1m tmpfs \(q(volume))/ram && mount --bind \(q(node.outside))/src \(q(volume))/bind")
        try node.age(volume)
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.reasons == [.mounted])
        let report = node.execute(plan)
        #expect(report.outcomes.allSatisfy { $0.unmounted.isEmpty })
        #expect(try isMountPoint(volume + "/ram"))
        #expect(try isMountPoint(volume + "/bind"))
        #expect(exists(volume + "/bind/f"))
    }
}
