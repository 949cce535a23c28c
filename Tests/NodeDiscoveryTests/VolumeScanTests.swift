import Foundation
import NodeDiscovery
import ReaperCore
import SystemCalls
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// One walk of a volume tree: never through a symlink, sizes and times of the tree only.
@Suite("NodeDiscovery: walking a volume")
struct VolumeScanTests {
    @Test("a configMap atomic-writer symlink farm is counted without following its symlinks")
    func atomicWriterFarm() throws {
        let tree = try KubeletTree("farm")
        defer { tree.remove() }
        let volume = try tree.volume(KubeletTree.uid1, "kubernetes.io~configmap", "app-config")
        let stamp = "..2026_11_29_06_00_00.000000001"
        try tree.makeDirectory("\(volume)/\(stamp)")
        try tree.write("\(volume)/\(stamp)/app.conf", bytes: 20000)
        try tree.write("\(volume)/\(stamp)/other.conf", bytes: 10)
        try tree.symlink("\(volume)/..data", to: stamp)
        try tree.symlink("\(volume)/app.conf", to: "..data/app.conf")
        try tree.symlink("\(volume)/other.conf", to: "..data/other.conf")
        try tree.touchTree(volume)

        let scan = try tree.scan(volume)
        let oracle = try tree.findOracle(volume)
        #expect(scan.files == 6, "..2026…, its 2 files, ..data and 2 key symlinks; following would count more")
        #expect(scan.files == oracle.files)
        #expect(scan.bytes == oracle.bytes)
        #expect(scan.bytes < 2 * 20480 + 4 * 4096 + 8192, "app.conf counted once: \(scan.bytes)")
        #expect(seconds(scan.newestModification) == Double(KubeletTree.old))
        #expect(scan.unreadable.isEmpty && !scan.vanishedDuringScan && !scan.isMounted && scan.lockedPaths.isEmpty)
        #expect(!scan.holdsOnlyBookkeeping)
    }

    @Test("symlink loops end the walk cleanly")
    func symlinkLoop() throws {
        let tree = try KubeletTree("loop")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/sub")
        try tree.symlink(volume + "/loop-a", to: "loop-b")
        try tree.symlink(volume + "/loop-b", to: "loop-a")
        try tree.symlink(volume + "/sub/self", to: ".")
        try tree.symlink(volume + "/sub/up", to: "..")
        try tree.symlink(volume + "/sub/pods", to: tree.pods)
        // A second volume that a walk escaping through `up` or `pods` would count.
        let other = try tree.volume(KubeletTree.uid2)
        for index in 0..<20 { try tree.write("\(other)/file-\(index)", bytes: 100) }

        let scan = try tree.scan(volume)
        #expect(scan.files == 6)
        #expect(scan.files == (try tree.findOracle(volume).files))
        #expect(scan.unreadable.isEmpty, "\(scan.unreadable)")
        #expect(!scan.vanishedDuringScan)
    }

    @Test("a FIFO is not opened: the walk does not block", .timeLimit(.minutes(1)))
    func fifo() throws {
        let tree = try KubeletTree("fifo")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/sub")
        #expect(mkfifo(volume + "/pipe", 0o644) == 0)
        #expect(mkfifo(volume + "/sub/pipe", 0o600) == 0)
        try tree.write(volume + "/sub/data", bytes: 5000)

        let scan = try tree.scan(volume)  // would hang on open(O_RDONLY) of a FIFO without a writer
        #expect(scan.files == 4)
        #expect(scan.bytes == (try tree.findOracle(volume).bytes))
        #expect(scan.unreadable.isEmpty, "\(scan.unreadable)")
    }

    @Test("symlinks out of the tree: the outside's sizes and times do not count")
    func symlinksOut() throws {
        let tree = try KubeletTree("outside")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/sub")
        try tree.write(volume + "/sub/small", bytes: 100)
        // Outside: newer and much larger than anything in the volume.
        try tree.makeDirectory(tree.outside + "/precious-dir/deeper")
        try tree.write(tree.outside + "/precious-file", bytes: 4 << 20)
        try tree.write(tree.outside + "/precious-dir/deeper/big", bytes: 4 << 20)
        try tree.symlink(volume + "/link-to-file", to: tree.outside + "/precious-file")
        try tree.symlink(volume + "/link-to-dir", to: tree.outside + "/precious-dir")
        try tree.symlink(volume + "/sub/relative-out", to: "../../../../../../../outside/precious-dir")
        try tree.symlink(volume + "/sub/etc", to: "/etc")
        try tree.touchTree(volume)
        try tree.touchTree(tree.outside, at: KubeletTree.old + 3 * 3600 - 5)

        let scan = try tree.scan(volume)
        #expect(seconds(scan.newestModification) == Double(KubeletTree.old), "the outside's mtime leaked in")
        #expect(scan.bytes < 1 << 20, "the outside's bytes leaked in: \(scan.bytes)")
        let oracle = try tree.findOracle(volume)
        #expect(scan.bytes == oracle.bytes)
        #expect(scan.files == 6)
        #expect(scan.files == oracle.files)
        #expect(scan.unreadable.isEmpty && !scan.vanishedDuringScan)
    }

    @Test("a volume directory that is itself a symlink is not followed")
    func volumeRootSymlink() throws {
        let tree = try KubeletTree("rootlink")
        defer { tree.remove() }
        try tree.makeDirectory(tree.outside + "/target")
        try tree.write(tree.outside + "/target/big", bytes: 1 << 20)
        try tree.makeDirectory("\(tree.pods)/\(KubeletTree.uid1)/volumes/\(KubeletTree.emptyDir)")
        let volume = "\(tree.pods)/\(KubeletTree.uid1)/volumes/\(KubeletTree.emptyDir)/scratch"
        try tree.symlink(volume, to: tree.outside + "/target")

        let scan = try tree.scan(volume)
        #expect(scan.bytes == 0 && scan.files == 0, "followed: \(scan.bytes) bytes")
        #expect(!scan.unreadable.isEmpty || scan.vanishedDuringScan, "a symlinked volume must not look like an empty, reapable one")
    }

    @Test("the newest mtime is found deep in an old tree")
    func newestDeep() throws {
        let tree = try KubeletTree("deep")
        defer { tree.remove() }
        let volume = try tree.volume()
        var path = volume
        for level in 0..<10 {
            path += "/level-\(level)"
            try tree.makeDirectory(path)
            try tree.write(path + "/file", bytes: 10)
        }
        try tree.touchTree(volume)
        let fresh = KubeletTree.old + 3 * 3600 - 600
        try tree.sh("touch -d @\(fresh) '\(volume)/level-0/level-1/level-2/level-3/level-4/level-5/level-6/file'")
        try tree.sh("touch -d @\(fresh - 100) '\(path)/file'")  // the deepest, but older

        let scan = try tree.scan(volume)
        #expect(seconds(scan.newestModification) == Double(fresh))
        #expect(seconds(scan.newestModification) == (try tree.findOracle(volume).newestModification))
        // ctime cannot be set back: it is the newest change, now-ish.
        #expect(try #require(seconds(scan.newestChange)) > Double(fresh))
        #expect(scan.files == 20)
    }

    @Test("the volume root's own mtime counts")
    func rootMtime() throws {
        let tree = try KubeletTree("rootmtime")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.write(volume + "/file", bytes: 10)
        try tree.touchTree(volume)
        try tree.sh("touch -d @\(KubeletTree.old + 60) '\(volume)'")  // a file was deleted from it
        #expect(seconds(try tree.scan(volume).newestModification) == Double(KubeletTree.old + 60))
    }

    @Test("bytes on disk and entry counts match find(1)")
    func bytesAndFiles() throws {
        let tree = try KubeletTree("bytes")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/a/b")
        try tree.makeDirectory(volume + "/empty")
        try tree.write(volume + "/zero")
        try tree.write(volume + "/one", bytes: 1)
        try tree.write(volume + "/a/hundred-k", bytes: 100 * 1024)
        try tree.write(volume + "/a/b/megabyte", bytes: 1 << 20)
        try tree.sh("truncate -s 64M '\(volume)/a/sparse'")  // apparent size is not what deleting frees
        try tree.sh("ln '\(volume)/one' '\(volume)/a/hardlink'")

        let scan = try tree.scan(volume)
        let oracle = try tree.findOracle(volume)
        #expect(scan.files == 9)
        #expect(scan.files == oracle.files)
        #expect(scan.bytes == oracle.bytes)
        #expect(scan.bytes >= (1 << 20) + 100 * 1024)
        #expect(scan.bytes < 8 << 20, "the sparse file counts by its blocks: \(scan.bytes)")
        #expect(!scan.holdsOnlyBookkeeping)
    }

    enum Layout: String, CaseIterable, Sendable {
        case csiBookkeeping, csiDataInMount, csiOnlyVolData, csiExtraFile, csiMountIsFile, csiVolDataIsDirectory
        case nfsEmpty, nfsFile, nfsEmptySubdirectory, emptyDirEmpty, emptyDirFile
    }

    @Test("holdsOnlyBookkeeping: only nothing, or for CSI an empty mount/ and vol_data.json", arguments: Layout.allCases)
    func bookkeeping(layout: Layout) throws {
        let tree = try KubeletTree("csi")
        defer { tree.remove() }
        let plugin = switch layout {
        case .nfsEmpty, .nfsFile, .nfsEmptySubdirectory: "kubernetes.io~nfs"
        case .emptyDirEmpty, .emptyDirFile: KubeletTree.emptyDir
        default: "kubernetes.io~csi"
        }
        let volume = try tree.volume(KubeletTree.uid1, plugin, "pvc-0a1b")
        let expected: Bool
        switch layout {
        case .csiBookkeeping:
            try tree.makeDirectory(volume + "/mount")
            try tree.write(volume + "/vol_data.json", text: #"{"driverName":"ebs.csi.aws.com"}"#)
            expected = true
        case .csiDataInMount:
            try tree.makeDirectory(volume + "/mount/db")
            try tree.write(volume + "/mount/db/table", text: "leftover")
            try tree.write(volume + "/vol_data.json", text: "{}")
            expected = false
        case .csiOnlyVolData:
            try tree.write(volume + "/vol_data.json", text: "{}")
            expected = true
        case .csiExtraFile:
            try tree.makeDirectory(volume + "/mount")
            try tree.write(volume + "/vol_data.json", text: "{}")
            try tree.write(volume + "/stray", text: "x")
            expected = false
        case .csiMountIsFile:
            try tree.write(volume + "/mount", text: "x")
            expected = false
        case .csiVolDataIsDirectory:
            try tree.makeDirectory(volume + "/vol_data.json")
            expected = false
        case .nfsEmpty, .emptyDirEmpty:
            expected = true
        case .nfsFile, .emptyDirFile:
            try tree.write(volume + "/report.csv", text: "stale")
            expected = false
        case .nfsEmptySubdirectory:
            try tree.makeDirectory(volume + "/mount")
            expected = false
        }
        #expect(try tree.scan(volume).holdsOnlyBookkeeping == expected)
    }

    @Test("an unreadable directory is reported, the rest still walked")
    func unreadable() throws {
        let tree = try KubeletTree("unreadable")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/sub/secret")
        try tree.write(volume + "/sub/secret/hidden", bytes: 1 << 20)
        try tree.write(volume + "/sub/visible", bytes: 10)
        // The temp dir is 0700: let the unprivileged identity reach the tree, then lock one directory.
        try tree.sh("chmod 0755 '\(tree.directory.path)' && chmod 000 '\(volume)/sub/secret'")
        defer { _ = try? tree.sh("chmod 0755 '\(volume)/sub/secret'") }

        // As root, the kernel checks permissions only for a non-root fsuid (see withFileSystemUIDNobody).
        let scan = try withFileSystemUIDNobody { try tree.scan(volume) }
        #expect(scan.unreadable.count == 1, "\(scan.unreadable)")
        let entry = try #require(scan.unreadable.first)
        #expect(entry.hasPrefix(volume + "/sub/secret"), "\(entry)")
        #expect(entry.contains("errno 13"), "EACCES: \(entry)")
        #expect(scan.files == 3, "sub, sub/secret and sub/visible")
        #expect(scan.bytes < 1 << 20)

        // Readable again: nothing is reported, and the hidden file counts.
        _ = try tree.sh("chmod 0755 '\(volume)/sub/secret'")
        let again = try withFileSystemUIDNobody { try tree.scan(volume) }
        #expect(again.unreadable.isEmpty)
        #expect(again.files == 4)
    }

    @Test("one thread or four walk a wide, deep tree to the same report, and find(1) agrees")
    func workersAgree() throws {
        let tree = try KubeletTree("workers")
        defer { tree.remove() }
        let volume = try tree.volume()
        for top in 0..<12 {
            for sub in 0..<3 {
                try tree.makeDirectory("\(volume)/top-\(top)/sub-\(sub)/leaf")
                for file in 0..<4 { try tree.write("\(volume)/top-\(top)/sub-\(sub)/file-\(file)", bytes: 100 * file) }
            }
        }
        try tree.touchTree(volume)
        // The one fresh file, deep in one share of the work.
        try tree.write(volume + "/top-7/sub-2/leaf/fresh", bytes: 10)
        let holder = try LockHolder(volume + "/top-3/sub-1")
        defer { holder.release() }

        let mounts = try MountTable.read()
        let parent = try Syscall.openDirectory(nil, (volume as NSString).deletingLastPathComponent)
        defer { Syscall.close(parent) }
        func scan(workers: Int) -> VolumeScan {
            VolumeScanner(mountTable: mounts, workers: workers)
                .scan(volumeNamed: "scratch", in: parent, path: volume, plugin: .emptyDir)
        }
        let single = scan(workers: 1)
        let parallel = scan(workers: 4)
        #expect(parallel == single)

        let oracle = try tree.findOracle(volume)
        #expect(parallel.files == oracle.files)
        #expect(parallel.bytes == oracle.bytes)
        #expect(seconds(parallel.newestModification) == oracle.newestModification)
        #expect(seconds(parallel.newestModification)! > Double(KubeletTree.old), "the fresh file was seen")
        #expect(parallel.lockedPaths == [volume + "/top-3/sub-1"])
        #expect(parallel.unreadable.isEmpty && !parallel.vanishedDuringScan && !parallel.holdsOnlyBookkeeping)
    }

    @Test("the walk keeps every directory's inode and no file's, with one thread or four; find(1) agrees")
    func directoryInodesMatchFind() throws {
        let tree = try KubeletTree("inodes")
        defer { tree.remove() }
        let volume = try tree.volume()
        for top in 0..<12 {
            for sub in 0..<3 {
                try tree.makeDirectory("\(volume)/top-\(top)/sub-\(sub)/leaf")
                try tree.write("\(volume)/top-\(top)/sub-\(sub)/file", bytes: 10)
            }
        }
        let directories = try tree.sh("find '\(volume)' -type d -printf '%i\\n'").split(separator: "\n").map { UInt64($0)! }
        let files = try tree.sh("find '\(volume)' -type f -printf '%i\\n'").split(separator: "\n").map { UInt64($0)! }
        #expect(directories.count == 1 + 12 * 3 * 2 + 12)

        let mounts = try MountTable.read()
        let parent = try Syscall.openDirectory(nil, (volume as NSString).deletingLastPathComponent)
        defer { Syscall.close(parent) }
        for workers in [1, 4] {
            let inodes = VolumeScanner(mountTable: mounts, workers: workers)
                .walk(volumeNamed: "scratch", in: parent, path: volume, plugin: .emptyDir).directoryInodes
            #expect(inodes.count == directories.count, "workers: \(workers)")
            for inode in directories {
                #expect(!inodes.isDisjoint(with: [inode]), "directory inode \(inode) missing, workers: \(workers)")
            }
            #expect(inodes.isDisjoint(with: Set(files)), "a file's inode was kept, workers: \(workers)")
            #expect(inodes.isDisjoint(with: []))
        }
    }

    @Test("directory inodes survive their compact encoding: any width, duplicates, neighbours told apart")
    func directoryInodesEncoding() {
        let kept: [UInt64] = [UInt64.max, 0, 1, 127, 128, 129, 16_383, 16_384, 1 << 40, (1 << 40) + 1, 1 << 63, 128, 1]
        let inodes = DirectoryInodes(kept)
        #expect(inodes.count == Set(kept).count)
        for inode in kept {
            #expect(!inodes.isDisjoint(with: [inode]), "\(inode) lost")
        }
        for absent: UInt64 in [2, 126, 130, 16_382, 16_385, (1 << 40) - 1, (1 << 40) + 2, (1 << 63) - 1, (1 << 63) + 1, UInt64.max - 1] {
            #expect(inodes.isDisjoint(with: [absent]), "\(absent) matched")
        }
        #expect(DirectoryInodes([UInt64]()).isDisjoint(with: [0, 1]))
        // Dense inodes, as a tree's usually are, cost a byte each.
        #expect(DirectoryInodes(UInt64(5_000_000)..<5_001_000).encodedBytes < 1_010)
    }

    @Test("a flock-held directory inside a volume, or its root, is reported; released, it is not")
    func lockHeld() throws {
        let tree = try KubeletTree("flock")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/sub/deeper")
        try tree.write(volume + "/sub/file", bytes: 10)
        #expect(try tree.scan(volume).lockedPaths.isEmpty)

        for held in [volume + "/sub/deeper", volume] {
            let holder = try LockHolder(held)
            let scan = try tree.scan(volume)
            holder.release()
            #expect(scan.lockedPaths == [held])
            #expect(scan.files == 3)
            #expect(try tree.scan(volume).lockedPaths.isEmpty, "released")
        }
        // The scan's own probing left no lock behind.
        #expect(try !LockHolder.isHeld(volume + "/sub"))
    }

    @Test("a directory is tried for a flock only when /proc/locks lists its inode; with /proc/locks unreadable, every one is")
    func lockTriedWhereListed() throws {
        let tree = try KubeletTree("flock-listed")
        defer { tree.remove() }
        let volume = try tree.volume()
        try tree.makeDirectory(volume + "/sub/deeper")
        let held = volume + "/sub/deeper"
        let before = try #require(HeldLocks.flockedInodes())
        let holder = try LockHolder(held)
        defer { holder.release() }
        let mounts = try MountTable.read()
        let parent = try Syscall.openDirectory(nil, (volume as NSString).deletingLastPathComponent)
        defer { Syscall.close(parent) }
        func lockedPaths(_ flockedInodes: Set<UInt64>?) -> [String] {
            VolumeScanner(mountTable: mounts, workers: 1, flockedInodes: flockedInodes)
                .scan(volumeNamed: "scratch", in: parent, path: volume, plugin: .emptyDir).lockedPaths
        }
        #expect(lockedPaths(HeldLocks.flockedInodes()) == [held], "read after the lock was taken: listed, tried, reported")
        #expect(lockedPaths(nil) == [held], "unreadable: every directory tried")
        // Read before the lock: not listed, so not tried (the walk takes no
        // lock of its own there); the removal's own flock meets it.
        #expect(lockedPaths(before).isEmpty)
    }
}

/// A child process holding `flock(LOCK_EX)` on a directory, as systemd-tmpfiles
/// users do, until `release()`. A direct child (bash that becomes `sleep`, fd 9
/// still open and locked), so that killing this one process releases the lock.
/// (A `cmd &` backgrounded from `ChildProcess.shell` does not outlive the shell:
/// Foundation's Process takes it down with it.)
struct LockHolder {
    let process = Process()
    let path: String

    init(_ path: String) throws {
        self.path = path
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", #"exec 9<"$1" && flock --exclusive --nonblock 9 && exec sleep 60"#, "lock-holder", path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try wait(held: true)
    }

    func release() {
        // SIGKILL: a child of Foundation's Process may have SIGTERM blocked.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? wait(held: false)
    }

    /// Whether someone holds the lock, asked the way discovery asks: our own open and `LOCK_NB`.
    static func isHeld(_ path: String) throws -> Bool {
        let fd = try Syscall.openDirectory(nil, path)
        defer { Syscall.close(fd) }  // closing drops the lock if we got it
        return try !Syscall.tryLockExclusive(fd, path: path)
    }

    func wait(held: Bool) throws {
        for _ in 0..<200 {
            if try Self.isHeld(path) == held { return }
            if held, !process.isRunning { break }
            usleep(25_000)
        }
        throw ShellError(message: "\(path): the lock never became \(held ? "held" : "free")")
    }
}
