import Foundation
import Reaper
import SystemCalls
import SystemPackage
import Testing
import TestSupport

/// The removal engine alone, on real trees (design §5.2-5.3).
@Suite("SafeRemover")
struct SafeRemoverTests {
    /// `base/parent/victim` with nested dirs, files, a FIFO, symlinks to a file
    /// and a directory outside, an absolute symlink to /etc, a dangling link and
    /// a symlink loop; `base/outside` holds the targets.
    func makeTree(_ base: String) throws -> (victim: String, outside: String) {
        let victim = base + "/parent/victim"
        let outside = base + "/outside"
        try sh("""
            set -e
            mkdir -p \(q(victim))/a/b/c \(q(victim))/empty/nested \(q(outside))/dir/inner
            echo 'must survive' > \(q(outside))/file
            echo 'inner data' > \(q(outside))/dir/inner/keep
            head -c 100000 /dev/urandom > \(q(outside))/dir/blob
            head -c 8192 /dev/urandom > \(q(victim))/data.bin
            echo x > \(q(victim))/a/one && echo y > \(q(victim))/a/b/two && echo z > \(q(victim))/a/b/c/three
            mkfifo \(q(victim))/a/pipe
            ln -s \(q(outside))/file \(q(victim))/link-to-file
            ln -s \(q(outside))/dir \(q(victim))/a/link-to-dir
            ln -s \(q(outside))/dir/inner \(q(victim))/a/b/c/link-deeper
            ln -s /etc \(q(victim))/etc
            ln -s ../../nowhere \(q(victim))/dangling
            ln -s loop-b \(q(victim))/loop-a && ln -s loop-a \(q(victim))/loop-b
            """)
        return (victim, outside)
    }

    @Test("a tree of dirs, files, a FIFO and symlinks goes; symlink targets outside stay byte for byte")
    func removesTreeNotTargets() throws {
        let directory = try TemporaryDirectory("remover")
        defer { directory.remove() }
        let (victim, outside) = try makeTree(directory.path)
        let outsideBefore = try fingerprint(outside)
        let etcBefore = try sh("ls -la /etc | wc -l")
        let entries = Int(try sh("find \(q(victim)) | wc -l").trimmingCharacters(in: .whitespacesAndNewlines))!

        let parent = try Syscall.openDirectory(nil, directory.appending("parent"))
        defer { Syscall.close(parent) }
        let stats = try SafeRemover().removeTree(named: "victim", in: parent, path: victim)

        #expect(!exists(victim))
        #expect(stats.filesRemoved == entries, "every entry, the root included, counts once")
        #expect(stats.bytesFreed >= 8192, "file sizes are counted")
        #expect(try fingerprint(outside) == outsideBefore)
        #expect(try sh("ls -la /etc | wc -l") == etcBefore)
        #expect(exists(directory.appending("parent")))
    }

    @Test("removeFile takes a symlink, never what it points to; refuses a directory")
    func removeFileOnSymlink() throws {
        let directory = try TemporaryDirectory("remover-file")
        defer { directory.remove() }
        let (victim, outside) = try makeTree(directory.path)
        let before = try fingerprint(outside)
        let fd = try Syscall.openDirectory(nil, victim + "/a")
        defer { Syscall.close(fd) }
        _ = try SafeRemover().removeFile(named: "link-to-dir", in: fd, path: victim + "/a/link-to-dir")
        #expect(!exists(victim + "/a/link-to-dir"))
        #expect(try fingerprint(outside) == before)

        let error = #expect(throws: RemovalError.self) {
            _ = try SafeRemover().removeFile(named: "b", in: fd, path: victim + "/a/b")
        }
        #expect(error?.code == .changedDuringRemoval)
        #expect(exists(victim + "/a/b/two"))
    }

    @Test("removeEmptyDirectory removes only an empty directory")
    func removeEmptyDirectory() throws {
        let directory = try TemporaryDirectory("remover-rmdir")
        defer { directory.remove() }
        try sh("mkdir -p \(q(directory.path))/empty \(q(directory.path))/full && echo data > \(q(directory.path))/full/f")
        let fd = try Syscall.openDirectory(nil, directory.path)
        defer { Syscall.close(fd) }
        let error = #expect(throws: RemovalError.self) {
            try SafeRemover().removeEmptyDirectory(named: "full", in: fd, path: directory.appending("full"))
        }
        #expect(error?.code == .notEmpty)
        #expect(error?.reason == .notEmpty)
        #expect(exists(directory.appending("full/f")))
        try SafeRemover().removeEmptyDirectory(named: "empty", in: fd, path: directory.appending("empty"))
        #expect(!exists(directory.appending("empty")))
    }

    @Test("the root itself a symlink to a directory: refused, target intact")
    func rootIsSymlink() throws {
        let directory = try TemporaryDirectory("remover-rootlink")
        defer { directory.remove() }
        let (_, outside) = try makeTree(directory.path)
        try sh("ln -s \(q(outside))/dir \(q(directory.path))/parent/swapped")
        let before = try fingerprint(outside)
        let parent = try Syscall.openDirectory(nil, directory.appending("parent"))
        defer { Syscall.close(parent) }
        let error = #expect(throws: RemovalError.self) {
            _ = try SafeRemover().removeTree(named: "swapped", in: parent, path: directory.appending("parent/swapped"))
        }
        #expect(error?.code == .changedDuringRemoval)
        #expect(exists(directory.appending("parent/swapped")))
        #expect(try fingerprint(outside) == before)
    }

    @Test("a flock-held directory inside stops the removal with lockHeld")
    func heldLockStops() throws {
        let directory = try TemporaryDirectory("remover-lock")
        defer { directory.remove() }
        let (victim, _) = try makeTree(directory.path)
        let holder = try Background("exec 9<\(q(victim + "/a/b")) && flock -x -w 10 9 && exec sleep 60")
        defer { holder.stop() }
        #expect(eventually { isFlockHeld(victim + "/a/b") })
        let parent = try Syscall.openDirectory(nil, directory.appending("parent"))
        defer { Syscall.close(parent) }
        let error = #expect(throws: RemovalError.self) {
            _ = try SafeRemover().removeTree(named: "victim", in: parent, path: victim)
        }
        #expect(error?.code == .lockHeld)
        #expect(error?.path == victim + "/a/b")
        #expect(exists(victim + "/a/b/two"))
    }

    @Test("a bind mount inside (same file system, hidden from st_dev) stops the removal; its contents stay",
          .enabled(if: isRoot, "needs root: mounts"))
    func bindMountStops() throws {
        let directory = try TemporaryDirectory("remover-bind")
        defer { directory.remove() }
        let (victim, outside) = try makeTree(directory.path)
        try sh("mount --bind \(q(outside))/dir \(q(victim))/a/b/c")
        let before = try fingerprint(outside)
        let parent = try Syscall.openDirectory(nil, directory.appending("parent"))
        defer { Syscall.close(parent) }
        let error = #expect(throws: RemovalError.self) {
            _ = try SafeRemover().removeTree(named: "victim", in: parent, path: victim)
        }
        #expect(error?.code == .mounted)
        #expect(error?.path == victim + "/a/b/c")
        #expect(try isMountPoint(victim + "/a/b/c"))
        try sh("umount \(q(victim))/a/b/c")
        #expect(try fingerprint(outside) == before)
    }

    @Test("a tmpfs mounted at the root is refused before anything is removed",
          .enabled(if: isRoot, "needs root: mounts"))
    func tmpfsRootRefused() throws {
        let directory = try TemporaryDirectory("remover-tmpfs")
        defer { directory.remove() }
        let victim = directory.appending("victim")
        try sh("mkdir \(q(victim)) && mount -t tmpfs -o size=1m tmpfs \(q(victim)) && echo live > \(q(victim))/f")
        let parent = try Syscall.openDirectory(nil, directory.path)
        defer { Syscall.close(parent) }
        let error = #expect(throws: RemovalError.self) {
            _ = try SafeRemover().removeTree(named: "victim", in: parent, path: victim)
        }
        #expect(error?.code == .mounted)
        #expect(try String(contentsOfFile: victim + "/f", encoding: .utf8) == "live\n")
    }
}
