import Foundation
import ReaperCore
import Testing

/// Design §4.5 and §5.2-5.6: what the walk saw of the volume on disk.
@Suite("Reconciler: disk rules")
struct DiskRuleTests {
    let uid = Fixture.uid(1)

    func node(plugin: PluginName = .emptyDir, scan: VolumeScan) -> NodeFixture {
        NodeFixture(pods: [Fixture.pod(uid)], plugin: plugin, scan: scan)
    }

    func path(_ plugin: PluginName = .emptyDir) -> String { Fixture.volumePath(uid, plugin, "scratch") }

    @Test("a mount at or inside the volume keeps: mounted")
    func mounted() throws {
        for mountPoint in [path(), path() + "/sub/mnt"] {
            let verdict = try node(scan: Fixture.scan(mounts: [MountInfo(mountPoint: mountPoint, filesystemType: "tmpfs")])).verdict()
            expect(verdict, .keep, [.mounted])
            #expect(verdict.mounted)
            #expect(verdict.mounts == [MountInfo(mountPoint: mountPoint, filesystemType: "tmpfs")])
        }
        #expect(try !node(scan: Fixture.scan()).verdict().mounted)
    }

    @Test("tmpfs in volumes.unmount on a local kind: will-unmount")
    func willUnmount() throws {
        var node = node(scan: Fixture.scan(mounts: [MountInfo(mountPoint: path(), filesystemType: "tmpfs")]))
        node.policy.volumes.unmount = ["tmpfs"]
        let verdict = try node.verdict()
        expect(verdict, .reap, [.podTerminated, .idle, .willUnmount])
        #expect(verdict.mounted)
    }

    @Test("will-unmount needs every mount's type listed")
    func willUnmountAllTypes() throws {
        var node = node(scan: Fixture.scan(mounts: [
            MountInfo(mountPoint: path(), filesystemType: "tmpfs"),
            MountInfo(mountPoint: path() + "/sub/mnt", filesystemType: "ext4"),
        ]))
        node.policy.volumes.unmount = ["tmpfs"]
        expect(try node.verdict(), .keep, [.mounted])
    }

    @Test("an nfs or CSI mount is never unmounted by the reaper, whatever volumes.unmount says", arguments: [
        (PluginName("kubernetes.io~nfs"), "nfs4"),
        (PluginName.csi, "ext4"),
    ])
    func networkNeverUnmounted(plugin: PluginName, type: String) throws {
        let mountPoint = plugin.isCSI ? path(plugin) + "/mount" : path(plugin)
        var node = node(plugin: plugin, scan: Fixture.scan(mounts: [MountInfo(mountPoint: mountPoint, filesystemType: type)], onlyBookkeeping: true))
        node.policy.volumes.unmount = [type]
        node.policy.volumes.recursive.append(plugin)  // even if a bad policy lists it (policy check refuses that)
        expect(try node.verdict(), .keep, [.mounted])
    }

    @Test("a local kind left out of volumes.recursive is not unmounted nor emptied")
    func localNotRecursive() throws {
        var node = node(scan: Fixture.scan(mounts: [MountInfo(mountPoint: path(), filesystemType: "tmpfs")]))
        node.policy.volumes.unmount = ["tmpfs"]
        node.policy.volumes.recursive = []
        expect(try node.verdict(), .keep, [.mounted, .notEmpty])
    }

    @Test("a flock-held directory keeps: lock-held")
    func lockHeld() throws {
        expect(try node(scan: Fixture.scan(lockedPaths: [path() + "/sub"])).verdict(), .keep, [.lockHeld])
    }

    @Test("non-local kinds only as empty directories: not-empty", arguments: [
        (PluginName("kubernetes.io~nfs"), false, VerdictKind.keep),
        (PluginName("kubernetes.io~nfs"), true, .reap),
        (PluginName.csi, false, .keep),  // data in mount/
        (PluginName.csi, true, .reap),   // only an empty mount/ and vol_data.json
        (PluginName("example.com~fancy"), false, .keep),
        (PluginName.emptyDir, false, .reap),  // a local kind may have its contents deleted
        (PluginName.configMap, false, .reap),
    ])
    func notEmpty(plugin: PluginName, onlyBookkeeping: Bool, kind: VerdictKind) throws {
        let verdict = try node(plugin: plugin, scan: Fixture.scan(onlyBookkeeping: onlyBookkeeping)).verdict()
        expect(verdict, kind, kind == .keep ? [.notEmpty] : [.podTerminated, .idle])
    }

    @Test("volumes.exclude keeps a plugin, in either name form: plugin-excluded", arguments: [
        "kubernetes.io/empty-dir", "kubernetes.io~empty-dir",
    ])
    func pluginExcluded(name: String) throws {
        var node = node(scan: Fixture.scan())
        node.policy.volumes.exclude = [PluginName(name)]
        expect(try node.verdict(), .keep, [.pluginExcluded])
        node.policy.volumes.exclude = [PluginName("kubernetes.io/configmap")]
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("an unreadable entry keeps: inconclusive")
    func unreadable() throws {
        let scan = Fixture.scan(unreadable: [path() + "/sub: openat sub: Permission denied (errno 13)"])
        expect(try node(scan: scan).verdict(), .keep, [.inconclusive])
    }

    @Test("no timestamp at all keeps: inconclusive")
    func noTimestamps() throws {
        let scan = VolumeScan(bytes: 0, files: 0)
        let node = NodeFixture(pods: [Fixture.pod(uid, finishedAt: nil)], scan: scan)
        let verdict = try node.verdict()
        expect(verdict, .keep, [.inconclusive])
        #expect(verdict.lastAccess == nil)
        #expect(verdict.lastAccessSource == nil)
        // With a finishedAt there is a last access after all.
        expect(try NodeFixture(pods: [Fixture.pod(uid)], scan: scan).verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("every disk reason at once, each listed")
    func everything() throws {
        var node = node(plugin: PluginName("kubernetes.io~nfs"), scan: Fixture.scan(
            mounts: [MountInfo(mountPoint: path(PluginName("kubernetes.io~nfs")), filesystemType: "nfs4")],
            lockedPaths: [path(PluginName("kubernetes.io~nfs"))], unreadable: ["x"], onlyBookkeeping: false
        ))
        node.policy.volumes.exclude = [PluginName("kubernetes.io/nfs")]
        expect(try node.verdict(), .keep, [.mounted, .lockHeld, .notEmpty, .pluginExcluded, .inconclusive])
    }
}
