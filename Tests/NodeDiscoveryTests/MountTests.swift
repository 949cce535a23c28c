import Foundation
import NodeDiscovery
import ReaperCore
import SystemCalls
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite("MountTable: parsing /proc/self/mountinfo")
struct MountTableTests {
    static let text = #"""
    22 27 0:21 / /proc rw,relatime - proc proc rw
    36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    37 35 0:50 / /tmp/a\011tab\134back rw shared:2 master:3 - tmpfs tmpfs rw
    38 35 0:51 / /var/lib/kubelet/pods/x/volumes/kubernetes.io~secret/s rw,relatime shared:9 - tmpfs tmpfs rw,size=1024k
    39 38 0:52 / /var/lib/kubelet/pods/x/volumes/kubernetes.io~secret/s rw - overlay overlay rw
    40 35 0:53 / /var/lib/kubelet/pods/x/volumes/kubernetes.io~secret/s-other rw - tmpfs tmpfs rw
    41 35 0:54 /data /var/lib/kubelet/pods/x/volumes/kubernetes.io~empty-dir/e/sub/mnt rw - ext4 /dev/vda rw
    not a mountinfo line
    """#

    @Test("mount points are unescaped (\\040 space, \\011 tab, \\134 backslash), optional fields skipped")
    func parse() {
        let table = MountTable(mountinfo: Self.text)
        #expect(table.mounts.count == 7)
        #expect(table.mounts[1] == MountInfo(mountPoint: "/mnt/with space", filesystemType: "ext3"))
        #expect(table.mounts[2] == MountInfo(mountPoint: "/tmp/a\ttab\\back", filesystemType: "tmpfs"))
        #expect(table.mounts[3].filesystemType == "tmpfs")
        #expect(table.mounts[0] == MountInfo(mountPoint: "/proc", filesystemType: "proc"))
    }

    @Test("mounts at or under a path, by whole path components")
    func atOrUnder() {
        let table = MountTable(mountinfo: Self.text)
        let secret = "/var/lib/kubelet/pods/x/volumes/kubernetes.io~secret/s"
        #expect(table.mounts(atOrUnder: secret).count == 2, "s-other is not under s")
        #expect(table.mounts(atOrUnder: secret + "/").count == 2)
        #expect(table.mounts(atOrUnder: "/var/lib/kubelet/pods/x/volumes/kubernetes.io~empty-dir/e").map(\.filesystemType) == ["ext4"])
        #expect(table.mounts(atOrUnder: "/mnt/with").isEmpty)
        #expect(table.mounts(atOrUnder: "/tmp/a").isEmpty)
    }

    /// The lookup is indexed; this is the rule it must keep, tested on
    /// every mount: the path itself or whole components below it.
    static func reference(_ table: MountTable, atOrUnder path: String) -> [MountInfo] {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        let prefix = trimmed.hasSuffix("/") ? trimmed : trimmed + "/"
        return table.mounts.filter { $0.mountPoint == trimmed || $0.mountPoint.hasPrefix(prefix) }
    }

    @Test("indexed lookups find what testing every mount finds, in table order: siblings sharing a prefix, stacks, non-ASCII names")
    func indexedLookups() {
        let points = [
            "/", "/var/lib/kubelet/pods/p/volumes/a~b/v/x", "/var/lib/kubelet/pods/p/volumes/a~b/v", "/var/lib/kubelet/pods/p/volumes/a~b/v-2",
            "/var/lib/kubelet/pods/p/volumes/a~b/v.d", "/var/lib/kubelet/pods/p/volumes/a~b/v", "/var/lib/kubelet/pods/p/volumes/a~b/v/x/y",
            "/var/lib/kubelet/pods/p/volumes/a~b/vv", "/data/caf\u{E9}", "/data/cafe\u{301}/m", "/data/\u{212A}elvin/m", "/data/Kelvin",
            "/data/Kelvin/n", "/data/\u{E9}t\u{E9}",
        ]
        var table = MountTable(mounts: points.enumerated().map { MountInfo(mountPoint: $1, filesystemType: "fs\($0)") })
        let queries = points + [
            "/var/lib/kubelet/pods/p/volumes/a~b/v/", "/var/lib/kubelet/pods/p/volumes/a~b", "/var/lib/kubelet/pods", "/data/caf\u{E9}/",
            "/data/cafe\u{301}", "/data/Kelvin", "/data/\u{212A}elvin", "/data", "/nowhere", "/var/lib/kubelet/pods/p/volumes/a~b/u",
            "/var/lib/kubelet/pods/p/volumes/a~b/w",
        ]
        for query in queries {
            #expect(table.mounts(atOrUnder: query) == Self.reference(table, atOrUnder: query), "\(query)")
            #expect(table.filesystemType(at: query) == table.mounts.last { $0.mountPoint == query }?.filesystemType, "\(query)")
        }
        #expect(table.mounts(atOrUnder: "/var/lib/kubelet/pods/p/volumes/a~b/v").map(\.filesystemType) == ["fs1", "fs2", "fs5", "fs6"])
        #expect(table.filesystemType(at: "/var/lib/kubelet/pods/p/volumes/a~b/v") == "fs5")
        // A table changed in place answers from its new mounts.
        table.mounts.append(MountInfo(mountPoint: "/var/lib/kubelet/pods/p/volumes/a~b/v/z", filesystemType: "tmpfs"))
        #expect(table.mounts(atOrUnder: "/var/lib/kubelet/pods/p/volumes/a~b/v").count == 5)
        #expect(table.filesystemType(at: "/var/lib/kubelet/pods/p/volumes/a~b/v/z") == "tmpfs")
    }

    @Test("the topmost of stacked mounts gives the type")
    func topmost() {
        let table = MountTable(mountinfo: Self.text)
        #expect(table.filesystemType(at: "/var/lib/kubelet/pods/x/volumes/kubernetes.io~secret/s") == "overlay")
        #expect(table.filesystemType(at: "/mnt/with space") == "ext3")
        #expect(table.filesystemType(at: "/mnt/with\\040space") == nil)
        #expect(table.filesystemType(at: "/nowhere") == nil)
    }

    @Test("the whole mount table is read, not only its first page", .enabled(if: isRoot, "needs root to mount"))
    func longTable() throws {
        let tree = try KubeletTree("many-mounts")
        defer { tree.remove() }
        let volume = try tree.volume()
        // 60 mounts of ~200 bytes each: mountinfo grows well past one 4 KiB page.
        try tree.sh("for i in $(seq 1 60); do mkdir -p '\(volume)'/m$i && mount -t tmpfs -o size=64k tmpfs '\(volume)'/m$i || exit 1; done")
        let table = try MountTable.read()
        let ours = table.mounts(atOrUnder: volume)
        #expect(ours.count == 60)
        #expect(ours.allSatisfy { $0.filesystemType == "tmpfs" })
        let scan = try tree.scan(volume)
        #expect(scan.mounts.count == 60)
        #expect(scan.mounts.allSatisfy { $0.filesystemType == "tmpfs" }, "a mount missing from the table shows as unknown")
    }

    @Test("this process's real mount table parses")
    func real() throws {
        let table = try MountTable.read()
        #expect(table.filesystemType(at: "/") != nil)
        #expect(table.filesystemType(at: "/proc") == "proc")
    }
}

/// Mounts inside volumes (design §5.2). Root only: they mount.
@Suite("NodeDiscovery: mounts in volumes", .enabled(if: isRoot, "needs root to mount"))
struct VolumeMountTests {
    @Test("a tmpfs on the volume root is reported and not walked, by the table and by statx alone")
    func tmpfsOnRoot() throws {
        let tree = try KubeletTree("tmpfs-root")
        defer { tree.remove() }
        let volume = try tree.volume(KubeletTree.uid1, "kubernetes.io~secret", "token")
        try tree.mount("-t tmpfs -o size=1m tmpfs '\(volume)'")
        try tree.write(volume + "/token", bytes: 4096)

        let scan = try tree.scan(volume)
        #expect(scan.mounts == [MountInfo(mountPoint: volume, filesystemType: "tmpfs")])
        #expect(scan.isMounted)
        #expect(scan.files == 0, "a mount is not crossed")

        let statxOnly = try tree.scan(volume, mountInfo: try tree.emptyMountInfo())
        #expect(statxOnly.mounts.map(\.mountPoint) == [volume], "STATX_ATTR_MOUNT_ROOT alone finds it")
        #expect(statxOnly.files == 0)
    }

    @Test("a tmpfs inside a volume is reported and its contents do not count")
    func tmpfsInside() throws {
        let tree = try KubeletTree("tmpfs-in")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/sub/mnt")
        try tree.write(volume + "/sub/file", bytes: 100)
        try tree.touchTree(volume)
        try tree.mount("-t tmpfs -o size=8m tmpfs '\(volume)/sub/mnt'")
        try tree.write(volume + "/sub/mnt/big", bytes: 2 << 20)
        try tree.write(volume + "/sub/mnt/other", bytes: 10)
        // The mount point looks old; only what is inside the tmpfs is fresh.
        try tree.sh("touch -d @\(KubeletTree.old) '\(volume)/sub/mnt'")

        for mountInfo in ["/proc/self/mountinfo", try tree.emptyMountInfo()] {
            let scan = try tree.scan(volume, mountInfo: mountInfo)
            #expect(scan.mounts.map(\.mountPoint) == [volume + "/sub/mnt"], "\(mountInfo)")
            #expect(scan.files == 3, "sub, sub/file and the mount point itself, not its contents")
            #expect(scan.bytes < 2 << 20)
            #expect(seconds(scan.newestModification).map { $0 < Double(KubeletTree.old + 3 * 3600 - 60) } ?? false,
                    "the tmpfs's fresh mtimes do not count")
        }
        #expect(try tree.scan(volume).mounts == [MountInfo(mountPoint: volume + "/sub/mnt", filesystemType: "tmpfs")])
    }

    @Test("a same-file-system bind mount inside a volume is detected though st_dev is the same")
    func bindMountSameFileSystem() throws {
        let tree = try KubeletTree("bind")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/sub/mnt")
        try tree.makeDirectory(tree.outside + "/bind-source")
        try tree.write(tree.outside + "/bind-source/live-data", bytes: 1 << 20)
        try tree.write(tree.outside + "/single-file", bytes: 1 << 20)
        try tree.write(volume + "/file-target", bytes: 1)
        try tree.mount("--bind '\(tree.outside)/bind-source' '\(volume)/sub/mnt'")
        try tree.mount("--bind '\(tree.outside)/single-file' '\(volume)/file-target'")
        // The premise: same device, so st_dev comparison alone would miss both.
        #expect(try status(volume + "/sub/mnt").device == status(volume).device)
        #expect(try status(volume + "/file-target").device == status(volume).device)

        let scan = try tree.scan(volume)
        #expect(Set(scan.mounts.map(\.mountPoint)) == [volume + "/sub/mnt", volume + "/file-target"])
        let expectedType = try MountTable.read().filesystemType(at: volume + "/sub/mnt")
        #expect(scan.mounts.first { $0.mountPoint == volume + "/sub/mnt" }?.filesystemType == expectedType)
        #expect(scan.files == 3, "sub, sub/mnt, file-target; live-data is not walked")

        let statxOnly = try tree.scan(volume, mountInfo: try tree.emptyMountInfo())
        #expect(Set(statxOnly.mounts.map(\.mountPoint)) == [volume + "/sub/mnt", volume + "/file-target"], "statx alone finds them")
    }

    @Test("a mount point with a space and a tab in its name is matched through the table's escapes")
    func escapedMountPoint() throws {
        let tree = try KubeletTree("escapes")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/with space")
        try tree.makeDirectory(volume + "/with\ttab")
        try tree.mount("-t tmpfs tmpfs '\(volume)/with space'")
        try tree.mount("-t ramfs ramfs '\(volume)/with\ttab'")
        let scan = try tree.scan(volume)
        let types = Dictionary(uniqueKeysWithValues: scan.mounts.map { ($0.mountPoint, $0.filesystemType) })
        #expect(types == [volume + "/with space": "tmpfs", volume + "/with\ttab": "ramfs"], "unknown means the table did not match")
    }

    @Test("a scan does not update atimes (strictatime tmpfs)")
    func atimeUntouched() throws {
        let tree = try KubeletTree("atime")
        defer { tree.remove() }
        try tree.mount("-t tmpfs -o strictatime,size=16m tmpfs '\(tree.root)'")
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/sub/deeper")
        try tree.write(volume + "/sub/file", bytes: 5000)
        try tree.write(volume + "/sub/deeper/file", bytes: 10)
        try tree.symlink(volume + "/sub/link", to: "file")
        // List first: listing reads the directories, which updates their atimes on this mount.
        let entries = try tree.sh("find '\(tree.root)'").split(separator: "\n").map(String.init)
        try tree.sh("touch -h -a -d @\(KubeletTree.old) \(entries.map { "'\($0)'" }.joined(separator: " "))")
        #expect(entries.count == 11)
        func atimes() throws -> [String: KernelTime] {
            Dictionary(uniqueKeysWithValues: try entries.map { ($0, try status($0).accessed) })
        }
        let before = try atimes()
        #expect(before.values.allSatisfy { $0.seconds == Int64(KubeletTree.old) })

        let scan = try tree.scan(volume)
        #expect(scan.files == 5)
        #expect(scan.newestAccess.map { $0.timeIntervalSince1970 == Double(KubeletTree.old) } ?? false)
        let after = try atimes()
        for entry in entries { #expect(after[entry] == before[entry], "atime of \(entry) changed") }

        // The control: on this mount, reading does update atimes, so the check above can fail.
        try tree.sh("ls '\(volume)/sub' >/dev/null && cat '\(volume)/sub/file' >/dev/null")
        #expect(try status(volume + "/sub").accessed != before[volume + "/sub"])
        #expect(try status(volume + "/sub/file").accessed != before[volume + "/sub/file"])
    }
}
