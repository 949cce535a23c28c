import Foundation
import NodeDiscovery
@testable import Reaper
import Synchronization
import ReaperCore
import SystemCalls
import Testing
import TestSupport

/// The removal-side holes of issue 13, each recreated the way it was found.
@Suite("PlanExecutor: removal-side holes of issue 13")
struct RemovalSafetyTests {
    /// One terminated pod with an idle emptyDir.
    func idleVolume(_ label: String) throws -> (TestNode, String) {
        let node = try TestNode(label)
        let uid = node.terminatedPod(1)
        let volume = try node.volume(uid, "scratch")
        return (node, volume)
    }

    /// `renameat2(a, b, RENAME_EXCHANGE)` as a racer in the pod would do it.
    static func exchange(_ a: String, _ b: String) {
        _ = try? ChildProcess.run("/usr/bin/python3", [
            "-c", "import ctypes,sys; l=ctypes.CDLL(None,use_errno=True); sys.exit(l.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2))", a, b,
        ])
    }

    @Test("hole 1: a and alink (a symlink to a tmpfs outside) exchanged between the last check and the unmount: the outside tmpfs stays mounted",
          .enabled(if: isRoot && inHostMountNamespace, "needs root in the host mount namespace: mounts, volumes.unmount"))
    func unmountFollowsNoSymlink() throws {
        let (node, volume) = try idleVolume("unmount-race")
        defer { node.remove() }
        let outside = node.outside + "/other"
        try sh("""
            set -e; mkdir -p \(q(volume))/a/mnt \(q(outside))/mnt
            mount -t tmpfs -o size=1m tmpfs \(q(volume))/a/mnt && mount -t tmpfs -o size=1m tmpfs \(q(outside))/mnt
            echo precious > \(q(outside))/mnt/data && ln -s \(q(outside)) \(q(volume))/alink
            """)
        node.policy.volumes.unmount = ["tmpfs"]
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap, "\(plan.verdict(volume)?.reasons ?? [])")

        var reaper = node.reaper
        reaper.beforeUnmount = { path in Self.exchange(path + "/a", path + "/alink") }
        usleep(20_000)
        let report = reaper.execute(plan: plan, currentPodView: { node.manifests() }, access: { [:] }, dryRun: false, logger: testLogger)
        let outcome = try #require(report.outcome(volume))
        #expect(try isMountPoint(outside + "/mnt"), "the outside tmpfs must stay mounted")
        #expect((try? String(contentsOfFile: outside + "/mnt/data", encoding: .utf8)) == "precious\n")
        #expect(outcome.action != .reaped)
        #expect(outcome.reasons.contains(.mounted), "\(outcome.reasons) \(outcome.detail ?? "")")
    }

    @Test("hole 1: without a race, the checked tmpfs is unmounted through its pinned parent and the volume reaped",
          .enabled(if: isRoot && inHostMountNamespace, "needs root in the host mount namespace: mounts, volumes.unmount"))
    func checkedUnmountStillWorks() throws {
        let (node, volume) = try idleVolume("unmount-plain")
        defer { node.remove() }
        try sh("mkdir -p \(q(volume))/a/mnt && mount -t tmpfs -o size=1m tmpfs \(q(volume))/a/mnt")
        node.policy.volumes.unmount = ["tmpfs"]
        try node.age()
        let outcome = try #require(node.execute(try node.plan()).outcome(volume))
        #expect(outcome.action == .reaped, "\(outcome.reasons) \(outcome.detail ?? "")")
        #expect(outcome.unmounted == [volume + "/a/mnt"])
        #expect(!exists(volume))
    }

    /// The unmount step alone (the agent here may not be in the host's
    /// mount namespace, which `execute` requires before any unmount).
    func checkedUnmount(racing: Bool) throws -> (node: TestNode, volume: String, outside: String, error: RemovalError?) {
        let (node, volume) = try idleVolume(racing ? "unmount-step-race" : "unmount-step")
        let outside = node.outside + "/other"
        try sh("""
            set -e; mkdir -p \(q(volume))/a/mnt \(q(outside))/mnt
            mount -t tmpfs -o size=1m tmpfs \(q(volume))/a/mnt && mount -t tmpfs -o size=1m tmpfs \(q(outside))/mnt
            echo precious > \(q(outside))/mnt/data && ln -s \(q(outside)) \(q(volume))/alink
            """)
        let location = try #require(KubeletPath(volumePath: volume, kubeletRoot: node.root))
        let opened = try location.open()
        defer { opened.close() }
        // The last check's view: the mount table and the mount it lists at a/mnt.
        let table = try MountTable.read()
        if racing { Self.exchange(volume + "/a", volume + "/alink") }
        do {
            try node.reaper.unmountChecked(MountInfo(mountPoint: volume + "/a/mnt", filesystemType: "tmpfs"), table: table, location: location, opened: opened)
            return (node, volume, outside, nil)
        } catch {
            return (node, volume, outside, error)
        }
    }

    @Test("hole 1, the unmount step: a and alink exchanged after the last check: refused (mounted), the outside tmpfs stays",
          .enabled(if: isRoot, "needs root: mounts"))
    func checkedUnmountRefusesSwap() throws {
        let (node, volume, outside, error) = try checkedUnmount(racing: true)
        defer { node.remove() }
        #expect(error?.code == .mounted, "\(String(describing: error))")
        #expect(try isMountPoint(outside + "/mnt"), "the outside tmpfs must stay mounted")
        #expect((try? String(contentsOfFile: outside + "/mnt/data", encoding: .utf8)) == "precious\n")
        #expect(try isMountPoint(volume + "/alink/mnt"), "nothing was unmounted")
    }

    @Test("hole 1, the unmount step: no race: exactly the checked tmpfs is unmounted",
          .enabled(if: isRoot, "needs root: mounts"))
    func checkedUnmountUnmounts() throws {
        let (node, volume, outside, error) = try checkedUnmount(racing: false)
        defer { node.remove() }
        #expect(error == nil, "\(String(describing: error))")
        #expect(try !isMountPoint(volume + "/a/mnt"))
        #expect(try isMountPoint(outside + "/mnt"))
    }

    @Test("hole 1, the unmount step: a different tmpfs mounted over the checked one: refused (another mount ID)",
          .enabled(if: isRoot, "needs root: mounts"))
    func checkedUnmountRefusesOtherMount() throws {
        let (node, volume) = try idleVolume("unmount-other")
        defer { node.remove() }
        try sh("mkdir -p \(q(volume))/a/mnt && mount -t tmpfs -o size=1m tmpfs \(q(volume))/a/mnt")
        let location = try #require(KubeletPath(volumePath: volume, kubeletRoot: node.root))
        let opened = try location.open()
        defer { opened.close() }
        let table = try MountTable.read()
        try sh("mount -t tmpfs -o size=1m tmpfs \(q(volume))/a/mnt")
        #expect(throws: RemovalError.self) {
            try node.reaper.unmountChecked(MountInfo(mountPoint: volume + "/a/mnt", filesystemType: "tmpfs"), table: table, location: location, opened: opened)
        }
        let stacked = try MountTable.read().mounts.filter { $0.mountPoint == volume + "/a/mnt" }.count
        #expect(stacked == 2, "both mounts stay")
    }

    /// An orphan's pod directory as the kubelet leaves it, beside a running
    /// pod, all old; `withVolume` adds an idle emptyDir.
    func orphanPod(_ label: String, withVolume: Bool) throws -> (TestNode, pod: String) {
        let node = try TestNode(label)
        node.runningPod(1)
        let pod = node.podDirectory(TestNode.uid(7))
        if withVolume { try node.fill(try node.volume(TestNode.uid(7), "scratch")) }
        try sh("""
            set -e; mkdir -p \(q(pod))/containers/main \(q(pod))/plugins && cd \(q(pod))
            echo old > containers/main/0b1c2d3e && echo '127.0.0.1 localhost' > etc-hosts
            """)
        try node.age()
        return (node, pod)
    }

    @Test("hole 8: an orphan pod directory with no volumes, etc-hosts and containers/ written a second ago: kept (recent-access)",
          arguments: [false, true])
    func orphanPodDirectoryRestIsJudged(withVolume: Bool) throws {
        let (node, pod) = try orphanPod("orphan-rest", withVolume: withVolume)
        defer { node.remove() }
        let plan = try node.plan()
        #expect(plan.orphanPodDirectories == [pod])
        try sh("echo '10.0.0.7 web' >> \(q(pod))/etc-hosts && echo restarted > \(q(pod))/containers/main/1c2d3e4f")
        let before = try fingerprint(pod + "/containers")
        let report = node.execute(plan)
        let directory = try #require(report.podDirectories.first)
        #expect(!directory.removed)
        #expect(directory.reasons.contains(.recentAccess), "\(directory.reasons) \(directory.detail ?? "")")
        #expect(directory.stats.filesRemoved == 0)
        #expect(try sh("cat \(q(pod))/etc-hosts").contains("10.0.0.7 web"))
        #expect(try fingerprint(pod + "/containers") == before)
    }

    @Test("hole 8: the same directory left idle goes")
    func idleOrphanPodDirectoryGoes() throws {
        let (node, pod) = try orphanPod("orphan-idle", withVolume: false)
        defer { node.remove() }
        let report = node.execute(try node.plan())
        let directory = try #require(report.podDirectories.first)
        #expect(directory.removed, "\(directory.reasons) \(directory.detail ?? "")")
        #expect(!exists(pod))
    }

    @Test("hole 8: a file written while the pod directory is removed stops it: partial, accessed-during-reap")
    func orphanPodDirectoryWrittenDuringRemoval() throws {
        let (node, pod) = try orphanPod("orphan-during", withVolume: false)
        defer { node.remove() }
        try sh("cd \(q(pod))/containers/main && for i in $(seq 1 10); do echo old > log$i; done && touch -d @\(Int(node.old.timeIntervalSince1970)) . log*")
        let plan = try node.plan()
        var reaper = node.reaper
        reaper.remover.afterEachRemoval = { count in
            guard count == 2 else { return }
            _ = try? ChildProcess.shell("find \(q(pod)) -type f -exec sh -c 'echo new >> \"$1\"' _ {} \\;")
        }
        usleep(20_000)
        let report = reaper.execute(plan: plan, currentPodView: { node.manifests() }, access: { [:] }, dryRun: false, logger: testLogger)
        let directory = try #require(report.podDirectories.first)
        #expect(!directory.removed)
        #expect(directory.isPartial, "\(directory.detail ?? "")")
        #expect(directory.reasons == [.accessedDuringReap])
        // Two entries went before the write; the pod directory's subtrees
        // are removed by two threads, and the other one may finish the entry
        // it is on.
        #expect(directory.stats.filesRemoved >= 2)
        #expect(exists(pod))
        let left = try sh("cd \(q(pod))/containers/main && for f in log*; do tail -n 1 \"$f\"; done | sort | uniq -c").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(left.hasSuffix(" new") && !left.contains("old"), "every file left was written, and stays: \(left)")
    }

    /// Twenty old files at the root and a subdirectory.
    func fillFlat(_ volume: String) throws {
        try sh("cd \(q(volume)) && for i in $(seq -w 1 20); do echo data-$i > f$i; done && mkdir sub && echo nested > sub/file")
    }

    @Test("hole 7: files written during the removal stop it; they stay, and the report is a partial reap, accessed-during-reap")
    func writeDuringRemoval() throws {
        let (node, volume) = try idleVolume("write-during")
        defer { node.remove() }
        try fillFlat(volume)
        try node.age()
        let plan = try node.plan()
        var reaper = node.reaper
        reaper.remover.afterEachRemoval = { count in
            // A container appends to every file still there, after 3 are gone.
            guard count == 3 else { return }
            _ = try? ChildProcess.shell("find \(q(volume)) -type f -exec sh -c 'echo appended >> \"$1\"' _ {} \\;")
        }
        usleep(20_000)
        let outcome = try #require(reaper.execute(plan: plan, currentPodView: { node.manifests() }, access: { [:] }, dryRun: false, logger: testLogger).outcome(volume))
        #expect(outcome.action == .partiallyReaped, "\(outcome.action) \(outcome.detail ?? "")")
        #expect(outcome.reasons == [.accessedDuringReap])
        #expect(outcome.stats.filesRemoved == 3)
        let left = try sh("find \(q(volume)) -type f | wc -l").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(left == "18", "every written file stays")
        #expect(try sh("cat \(q(volume))/sub/file") == "nested\nappended\n")
    }

    /// A process of the pod that opened `file` (for appending, or to read)
    /// before the removal and uses it after: it holds the descriptor until
    /// `go` appears, then appends "late" through it (a writer) and exits.
    final class FileHolder {
        let process = Process()
        let go: String

        init(_ file: String, writer: Bool, markers: String) throws {
            let ready = markers + "/ready"
            go = markers + "/go"
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", """
                import os, sys, time
                fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND if sys.argv[2] == "w" else os.O_RDONLY)
                open(sys.argv[3], "w").close()
                while not os.path.exists(sys.argv[4]): time.sleep(0.01)
                if sys.argv[2] == "w": os.write(fd, b"late\\n")
                """, file, writer ? "w" : "r", ready, go]
            try process.run()
            let deadline = Date().addingTimeInterval(10)
            while !FileManager.default.fileExists(atPath: ready), Date() < deadline { usleep(10_000) }
        }

        func finish() {
            _ = FileManager.default.createFile(atPath: go, contents: nil)
            process.waitUntilExit()
        }
    }

    @Test("hole 7: a file held open by a process of the pod, last written before the check, is not deleted: the removal stops at it, and the holder's next write lands in the file",
          arguments: [true, false])
    func fileHeldOpenDuringRemoval(writer: Bool) throws {
        let (node, volume) = try idleVolume(writer ? "held-for-writing" : "held-for-reading")
        defer { node.remove() }
        try fillFlat(volume)
        try node.age()
        let plan = try node.plan()
        #expect(plan.verdict(volume)?.verdict == .reap, "\(plan.verdict(volume)?.reasons ?? [])")
        try FileManager.default.createDirectory(atPath: node.outside + "/holder", withIntermediateDirectories: true)
        let holder = try FileHolder(volume + "/sub/file", writer: writer, markers: node.outside + "/holder")
        usleep(20_000)
        let outcome = try #require(node.reaper.execute(plan: plan, currentPodView: { node.manifests() }, access: { [:] }, dryRun: false, logger: testLogger).outcome(volume))
        holder.finish()
        #expect(outcome.action != .reaped, "\(outcome.action) \(outcome.detail ?? "")")
        #expect(outcome.reasons == [.accessedDuringReap])
        #expect(outcome.detail?.contains("open in another process") == true, "\(outcome.detail ?? "")")
        #expect(try sh("cat \(q(volume))/sub/file") == (writer ? "nested\nlate\n" : "nested\n"), "the held file stays, with what was written through it")
    }

    @Test("hole 7: a file created in a directory already listed stops the removal at its rmdir; the new file stays")
    func entryAddedDuringRemoval() throws {
        let (node, volume) = try idleVolume("add-during")
        defer { node.remove() }
        try fillFlat(volume)
        try node.age()
        let plan = try node.plan()
        var reaper = node.reaper
        reaper.remover.afterEachRemoval = { count in
            guard count == 2 else { return }
            _ = FileManager.default.createFile(atPath: volume + "/new-output", contents: Data("fresh\n".utf8))
        }
        usleep(20_000)
        let outcome = try #require(reaper.execute(plan: plan, currentPodView: { node.manifests() }, access: { [:] }, dryRun: false, logger: testLogger).outcome(volume))
        #expect(outcome.action == .partiallyReaped, "\(outcome.action) \(outcome.detail ?? "")")
        #expect(outcome.reasons == [.accessedDuringReap])
        #expect(outcome.stats.filesRemoved >= 2)
        #expect((try? String(contentsOfFile: volume + "/new-output", encoding: .utf8)) == "fresh\n")
    }

    @Test("hole 9: a bind mount landing mid-reap: partially-reaped with what had gone, never kept; the mount's source intact",
          .enabled(if: isRoot, "needs root: mounts"))
    func mountLandsMidReap() throws {
        let (node, volume) = try idleVolume("mount-mid")
        defer { node.remove() }
        try fillFlat(volume)
        try sh("mkdir -p \(q(node.outside))/source && echo live > \(q(node.outside))/source/f")
        try node.age()
        let plan = try node.plan()
        var reaper = node.reaper
        let source = node.outside + "/source"
        reaper.remover.afterEachRemoval = { count in
            guard count == 5 else { return }
            _ = try? ChildProcess.shell("mount --bind \(q(source)) \(q(volume))/sub")
        }
        usleep(20_000)
        let outcome = try #require(reaper.execute(plan: plan, currentPodView: { node.manifests() }, access: { [:] }, dryRun: false, logger: testLogger).outcome(volume))
        #expect(outcome.action == .partiallyReaped, "\(outcome.action) \(outcome.detail ?? "")")
        #expect(outcome.reasons.contains(.mounted) || outcome.reasons.contains(.accessedDuringReap), "\(outcome.reasons)")
        #expect(outcome.stats.filesRemoved == 20, "the 20 files at the root went before sub/ was reached")
        #expect(outcome.stats.bytesFreed > 0)
        #expect(try sh("cat \(q(node.outside))/source/f") == "live\n")
    }

    @Test("hole 10: a file and a directory named with bytes 0xff 0xfe are scanned cleanly and reaped")
    func invalidUTF8Names() throws {
        let (node, volume) = try idleVolume("bytes")
        defer { node.remove() }
        try sh("cd \(q(volume)) && touch \"$(printf 'a\\xff\\xfe')\" && mkdir \"$(printf '\\xff\\xfe')\" && echo x > \"$(printf '\\xff\\xfe')/$(printf 'b\\xfe')\"")
        try node.age()
        let plan = try node.plan()
        let verdict = try #require(plan.verdict(volume))
        #expect(verdict.verdict == .reap, "\(verdict.reasons)")
        #expect(!verdict.reasons.contains(.changedDuringScan))
        #expect(verdict.files == 3)
        let outcome = try #require(node.execute(plan).outcome(volume))
        #expect(outcome.action == .reaped, "\(outcome.reasons) \(outcome.detail ?? "")")
        #expect(!exists(volume))
    }

    @Test("hole 11: a 300-deep chain is removed holding at most 8 directories open (reopened through .. with identity checks)")
    func deepChainBoundedDescriptors() throws {
        let directory = try TemporaryDirectory("deep")
        defer { directory.remove() }
        try sh("cd \(q(directory.path)) && python3 -c \"import os\nos.mkdir('top'); os.chdir('top')\nfor i in range(300):\n  open('f', 'w').write('x'); os.mkdir('d'); os.chdir('d')\"")
        let parent = try Syscall.openDirectory(nil, directory.path)
        defer { Syscall.close(parent) }
        let tree = directory.appending("top")
        @Sendable func openInTree() -> Int { descriptorsOpen(under: tree) }
        let before = openInTree()
        let peak = Peak()
        var remover = SafeRemover(maximumOpenDirectories: 8)
        remover.afterEachRemoval = { _ in
            let open = openInTree()
            peak.value.withLock { $0 = max($0, open) }
        }
        let stats = try remover.removeTree(named: "top", in: parent, path: directory.appending("top"))
        #expect(stats.filesRemoved == 601)
        #expect(!exists(directory.appending("top")))
        let most = peak.value.withLock { $0 }
        #expect(before == 0)
        #expect(most > 0 && most <= 8, "peak \(most) descriptors open in the tree")
    }

    @Test("hole 11: a directory of the chain moved elsewhere while closed: reopening through .. notices, stops, outside stays")
    func deepChainMovedAway() throws {
        let directory = try TemporaryDirectory("deep-moved")
        defer { directory.remove() }
        try sh("cd \(q(directory.path)) && mkdir -p top/d1/d2/d3/d4/d5 outside && echo keep > outside/precious")
        let parent = try Syscall.openDirectory(nil, directory.path)
        defer { Syscall.close(parent) }
        var remover = SafeRemover(maximumOpenDirectories: 2)
        remover.afterEachRemoval = { count in
            // d5 is gone; top/d1/d2 are closed by now: move d2 (holding d3, d4) out.
            guard count == 1 else { return }
            _ = try? ChildProcess.shell("mv \(q(directory.path))/top/d1/d2 \(q(directory.path))/outside/")
        }
        #expect(throws: RemovalError.self) {
            _ = try remover.removeTree(named: "top", in: parent, path: directory.appending("top"))
        }
        #expect(exists(directory.appending("outside/precious")))
        #expect(exists(directory.appending("outside/d2")), "the moved directory's new parent is never emptied")
    }
}

/// The most descriptors seen open at once.
final class Peak: Sendable {
    let value = Mutex(0)
}
