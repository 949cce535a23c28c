import ReaperCore
import SystemCalls
import SystemPackage

/// Deletes directory trees without ever following a symlink or crossing a
/// mount (design §5.2-5.3): fd-relative (`openat` + `unlinkat`), iterative,
/// device and inode re-checked after every open, every directory flock-ed
/// while it is emptied so a tmpfiles-convention holder stops us.
///
/// It also stops at the first sign of use since the last check began
/// (`quietSince`): an entry changed or modified after it, a directory that
/// gained an entry after it was listed (`rmdir` says ENOTEMPTY), an entry
/// that vanished under us, a regular file another process holds open (a
/// write lease is refused). A regular file is checked and unlinked under its
/// lease, so no write lands between the check and the unlink. What is gone stays gone; the error carries how
/// much, so the caller reports a partial reap, not a keep.
///
/// Descriptors stay bounded whatever the depth: at most
/// `maximumOpenDirectories` directories are held open, by all threads
/// together; a closed one is reopened from its child through `..` and must
/// be the same directory (device and inode) as before. Memory is one name
/// per level plus the names of the subdirectories still to visit; full paths
/// are built only for reports.
///
/// The top directory's subdirectories are shared out to up to `workers`
/// threads (`SafeRemover+Workers.swift`), each removing whole subtrees under
/// every rule above. The first to stop stops the others: each finishes at
/// most the entry it is on, itself checked like any other.
public struct SafeRemover: Sendable {
    public var maximumOpenDirectories: Int
    /// Threads that remove the top directory's subtrees at once; 1 removes
    /// on the caller's thread only.
    public var workers: Int
    /// Called after each entry removed, with the running count over all
    /// threads (tests use it to make a race happen at an exact point of a
    /// removal).
    public var afterEachRemoval: (@Sendable (Int) -> Void)?

    public init(maximumOpenDirectories: Int = 64, workers: Int = SafeRemover.defaultWorkers) {
        self.maximumOpenDirectories = max(2, maximumOpenDirectories)
        self.workers = max(1, workers)
    }

    /// One directory of the current path.
    private struct Level {
        /// nil while closed to keep descriptors bounded.
        var fd: FileDescriptor?
        var name: FileName
        var device: UInt64
        var inode: UInt64
        var allocatedBytes: UInt64
        var pendingDirectories: [FileName] = []
        var listed = false
    }

    /// Removes directory `name` inside the open directory `parent` and all it
    /// holds. `path` is its absolute path, for reports. Stops at the first
    /// mount, held lock, swap, unreadable entry or sign of use since
    /// `quietSince` (nil: no such check); what was removed until then stays
    /// removed and the thrown error's `removed` says how much.
    public func removeTree(
        named name: FileName, in parent: FileDescriptor, path: String, quietSince: KernelTime? = nil
    ) throws(RemovalError) -> RemovalStats {
        let run = RemovalRun()
        var stats = RemovalStats()
        do {
            try removeTree(name, in: parent, path: path, quietSince: quietSince, run: run, stats: &stats)
        } catch {
            var stopped = error
            stopped.removed = stats
            throw stopped
        }
        return stats
    }

    public func removeTree(named name: String, in parent: FileDescriptor, path: String, quietSince: KernelTime? = nil) throws(RemovalError) -> RemovalStats {
        try removeTree(named: FileName(name), in: parent, path: path, quietSince: quietSince)
    }

    private func removeTree(
        _ name: FileName, in parent: FileDescriptor, path: String, quietSince: KernelTime?, run: RemovalRun,
        stats: inout RemovalStats
    ) throws(RemovalError) {
        let rootStatus = try status(of: name, in: parent, path: { path })
        guard rootStatus.isDirectory else {
            throw RemovalError(.changedDuringRemoval, path: path, detail: "no longer a directory")
        }
        if rootStatus.isMountRoot == true {
            throw RemovalError(.mounted, path: path, detail: "is a mount point")
        }
        try checkQuiet(rootStatus, since: quietSince, path: { path })
        let tree = Tree(root: rootStatus, quietSince: quietSince, run: run)
        try removeDirectory(
            name, in: parent, path: path, status: rootStatus, tree: tree, openLimit: maximumOpenDirectories,
            sharesSubtrees: workers > 1, stats: &stats
        )
    }

    /// What every directory of one removal is checked against, and what
    /// its threads share.
    struct Tree {
        /// The top directory: everything removed is on its mount.
        var root: FileStatus
        var quietSince: KernelTime?
        var run: RemovalRun
    }

    /// A subdirectory about to be entered, looked at by name: still a
    /// directory, on the tree's mount, unchanged since the last check began.
    func lookAtSubdirectory(_ name: FileName, in parent: FileDescriptor, tree: Tree, path: () -> String) throws(RemovalError) -> FileStatus {
        let status = try status(of: name, in: parent, path: path)
        guard status.isDirectory else {
            throw RemovalError(.changedDuringRemoval, path: path(), detail: "no longer a directory")
        }
        try checkSameMount(status, root: tree.root, path: path)
        try checkQuiet(status, since: tree.quietSince, path: path)
        return status
    }

    /// Removes the directory `name` of `parent`, looked at as `status`, and
    /// all it holds, depth first, with at most `openLimit` directories open.
    /// `sharesSubtrees`: its own subdirectories go to the worker threads.
    func removeDirectory(
        _ name: FileName, in parent: FileDescriptor, path: String, status: FileStatus, tree: Tree, openLimit: Int,
        sharesSubtrees: Bool, stats: inout RemovalStats
    ) throws(RemovalError) {
        let opened = try openVerified(name, in: parent, path: { path }, expected: status, root: tree.root)
        var stack = [Level(fd: opened, name: name, device: status.device, inode: status.inode, allocatedBytes: status.allocatedBytes)]
        var openCount = 1
        defer { for level in stack { if let fd = level.fd { Syscall.close(fd) } } }

        /// The path of level `index` (and of `child` inside it), for reports only.
        func pathOf(_ index: Int, _ child: FileName? = nil) -> String {
            var text = path
            if index >= 1 { for level in stack[1...index] { text += "/" + level.name.description } }
            if let child { text += "/" + child.description }
            return text
        }

        while let top = stack.indices.last {
            try tree.run.checkNotStopped(path: { pathOf(top) })
            let topFD = stack[top].fd!
            if !stack[top].listed {
                stack[top].listed = true
                stack[top].pendingDirectories = try emptyOfNonDirectories(
                    topFD, path: { pathOf(top) }, tree: tree, stats: &stats
                )
                if top == 0, sharesSubtrees {
                    try removeSharedOut(&stack[0].pendingDirectories, in: topFD, path: path, tree: tree, stats: &stats)
                }
            }
            if let child = stack[top].pendingDirectories.popLast() {
                let childPath = { pathOf(top, child) }
                let status = try lookAtSubdirectory(child, in: topFD, tree: tree, path: childPath)
                let fd = try openVerified(child, in: topFD, path: childPath, expected: status, root: tree.root)
                stack.append(Level(fd: fd, name: child, device: status.device, inode: status.inode, allocatedBytes: status.allocatedBytes))
                openCount += 1
                if openCount > openLimit, let oldest = stack.firstIndex(where: { $0.fd != nil }) {
                    Syscall.close(stack[oldest].fd!)
                    stack[oldest].fd = nil
                    openCount -= 1
                }
                continue
            }
            // Emptied: remove it from its parent, reopened first if it was closed.
            let donePath = pathOf(top)
            let done = stack.removeLast()
            let parentFD: FileDescriptor
            if let above = stack.indices.last {
                if stack[above].fd == nil {
                    do {
                        stack[above].fd = try reopenParent(of: done.fd!, expected: stack[above], root: tree.root, path: { pathOf(above) })
                    } catch {
                        Syscall.close(done.fd!)
                        throw error
                    }
                    openCount += 1
                }
                parentFD = stack[above].fd!
            } else {
                parentFD = parent
            }
            Syscall.close(done.fd!)
            openCount -= 1
            do {
                try Syscall.unlinkAt(parentFD, done.name, removeDirectory: true)
            } catch where error.errno == .directoryNotEmpty {
                throw RemovalError(.changedDuringRemoval, path: donePath, detail: "an entry appeared while it was being emptied", systemCall: error)
            } catch {
                throw RemovalError.from(error, path: donePath)
            }
            counted(done.allocatedBytes, run: tree.run, stats: &stats)
        }
    }

    /// Counts one entry removed, and tells `afterEachRemoval`.
    private func counted(_ allocatedBytes: UInt64, run: RemovalRun, stats: inout RemovalStats) {
        stats.filesRemoved += 1
        stats.bytesFreed += allocatedBytes
        let total = run.entryRemoved()
        afterEachRemoval?(total)
    }

    /// `rmdir` of an empty directory: the only removal network and CSI
    /// volumes ever get (design §5.5).
    public func removeEmptyDirectory(named name: String, in parent: FileDescriptor, path: String) throws(RemovalError) {
        let status = try status(of: FileName(name), in: parent, path: { path })
        guard status.isDirectory else {
            throw RemovalError(.changedDuringRemoval, path: path, detail: "no longer a directory")
        }
        if status.isMountRoot == true { throw RemovalError(.mounted, path: path, detail: "is a mount point") }
        try removeEntry(FileName(name), in: parent, path: { path }, directory: true)
    }

    /// Removes a regular file or symlink `name` (never what a symlink points to).
    public func removeFile(named name: String, in parent: FileDescriptor, path: String) throws(RemovalError) -> UInt64 {
        let status = try status(of: FileName(name), in: parent, path: { path })
        if status.isDirectory { throw RemovalError(.changedDuringRemoval, path: path, detail: "is a directory") }
        try removeEntry(FileName(name), in: parent, path: { path }, directory: false)
        return status.allocatedBytes
    }

    // MARK: Steps

    /// Opens a directory without following symlinks, checks it is the one we
    /// looked at (device and inode), on our mount, and takes its flock.
    private func openVerified(
        _ name: FileName, in parent: FileDescriptor, path: () -> String, expected: FileStatus, root: FileStatus
    ) throws(RemovalError) -> FileDescriptor {
        let fd: FileDescriptor
        do {
            fd = try Syscall.openDirectory(parent, name)
        } catch {
            throw RemovalError.from(error, path: path())
        }
        do throws(RemovalError) {
            try verify(fd, device: expected.device, inode: expected.inode, root: root, path: path)
            return fd
        } catch {
            Syscall.close(fd)
            throw error
        }
    }

    /// Reopens a directory closed to bound descriptors, from its child
    /// through `..`: it must be the same directory, or the tree was moved.
    private func reopenParent(
        of child: FileDescriptor, expected: Level, root: FileStatus, path: () -> String
    ) throws(RemovalError) -> FileDescriptor {
        let fd: FileDescriptor
        do {
            fd = try Syscall.openDirectory(child, "..")
        } catch {
            throw RemovalError.from(error, path: path())
        }
        do throws(RemovalError) {
            try verify(fd, device: expected.device, inode: expected.inode, root: root, path: path)
            return fd
        } catch {
            Syscall.close(fd)
            throw error
        }
    }

    private func verify(_ fd: FileDescriptor, device: UInt64, inode: UInt64, root: FileStatus, path: () -> String) throws(RemovalError) {
        let opened = try statusOfOpened(fd, device: device, inode: inode, path: path)
        try checkSameMount(opened, root: root, path: path)
        let locked: Bool
        do { locked = try Syscall.tryLockExclusive(fd) } catch { throw RemovalError.from(error, path: path()) }
        guard locked else {
            throw RemovalError(.lockHeld, path: path(), detail: "flock held by another process")
        }
    }

    /// `statx` of what `fd` opened, which must be the entry looked at by name
    /// before (device and inode), or it was swapped in between.
    private func statusOfOpened(_ fd: FileDescriptor, device: UInt64, inode: UInt64, path: () -> String) throws(RemovalError) -> FileStatus {
        let opened: FileStatus
        do { opened = try Syscall.statx(fd) } catch { throw RemovalError.from(error, path: path()) }
        guard opened.inode == inode, opened.device == device else {
            throw RemovalError(.changedDuringRemoval, path: path(), detail: "swapped between check and open")
        }
        return opened
    }

    /// `statx` of `name`, its failure as the removal error it means.
    private func status(of name: FileName, in parent: FileDescriptor, path: () -> String) throws(RemovalError) -> FileStatus {
        do {
            return try Syscall.statx(parent, name)
        } catch {
            throw RemovalError.from(error, path: path())
        }
    }

    /// `unlinkat`, its failure as the removal error it means.
    private func removeEntry(_ name: FileName, in parent: FileDescriptor, path: () -> String, directory: Bool) throws(RemovalError) {
        do {
            try Syscall.unlinkAt(parent, name, removeDirectory: directory)
        } catch {
            throw RemovalError.from(error, path: path())
        }
    }

    /// Removes a regular file under a write lease: granted only while no
    /// other process holds it open, and while held, anyone else's open waits.
    /// So no write can land between the quiet check and the unlink (a
    /// `statx` then `unlink` alone leaves that window), and a file held open,
    /// by a writer or a reader, is in use and stops the removal. Where leases
    /// are not granted (a filesystem without them, or no CAP_LEASE: `check`
    /// warns), the check falls back to the file's times, as for other
    /// entries: as safe as before leases, with the window back.
    private func removeRegularFile(
        _ name: FileName, in directory: FileDescriptor, expected: FileStatus, quietSince: KernelTime?, path: () -> String
    ) throws(RemovalError) {
        let file: FileDescriptor
        do {
            file = try Syscall.openForLease(directory, name)
        } catch where error.errno == .wouldBlock {
            throw RemovalError(.changedDuringRemoval, path: path(), detail: "leased by another process: in use", systemCall: error)
        } catch {
            throw RemovalError.from(error, path: path())
        }
        defer { Syscall.close(file) }
        let lease: Syscall.LeaseOutcome
        do { lease = try Syscall.tryWriteLease(file, path: path()) } catch { throw RemovalError.from(error, path: path()) }
        if lease == .heldOpenElsewhere {
            throw RemovalError(.changedDuringRemoval, path: path(), detail: "open in another process: in use")
        }
        defer { if lease == .granted { try? Syscall.releaseLease(file) } }
        let opened = try statusOfOpened(file, device: expected.device, inode: expected.inode, path: path)
        try checkQuiet(opened, since: quietSince, path: path)
        try removeEntry(name, in: directory, path: path, directory: false)
    }

    private func checkSameMount(_ status: FileStatus, root: FileStatus, path: () -> String) throws(RemovalError) {
        if status.isMountRoot == true || status.mountID != root.mountID || status.device != root.device {
            throw RemovalError(.mounted, path: path(), detail: "is a mount point")
        }
    }

    /// Changed or modified since the last check began: someone is using it.
    private func checkQuiet(_ status: FileStatus, since: KernelTime?, path: () -> String) throws(RemovalError) {
        guard let since, status.changed >= since || status.modified >= since else { return }
        throw RemovalError(.changedDuringRemoval, path: path(), detail: "changed after the last check began: in use")
    }

    /// Unlinks every non-directory in the directory `fd`; returns its
    /// subdirectories. Every entry is looked at first (`statx`): a mount, or
    /// a change since the last check began, stops the removal before it.
    private func emptyOfNonDirectories(
        _ fd: FileDescriptor, path: () -> String, tree: Tree, stats: inout RemovalStats
    ) throws(RemovalError) -> [FileName] {
        let entries: [DirectoryEntry]
        do {
            entries = try Syscall.readDirectory(fd)
        } catch {
            throw RemovalError.from(error, path: path())
        }
        var directories: [FileName] = []
        for entry in entries {
            func entryPath() -> String { path() + "/" + entry.name.description }
            try tree.run.checkNotStopped(path: entryPath)
            let status = try status(of: entry.name, in: fd, path: entryPath)
            if status.isDirectory {
                directories.append(entry.name)
                continue
            }
            try checkSameMount(status, root: tree.root, path: entryPath)
            if status.isRegular {
                try removeRegularFile(entry.name, in: fd, expected: status, quietSince: tree.quietSince, path: entryPath)
            } else {
                try checkQuiet(status, since: tree.quietSince, path: entryPath)
                try removeEntry(entry.name, in: fd, path: entryPath, directory: false)
            }
            counted(status.allocatedBytes, run: tree.run, stats: &stats)
        }
        return directories
    }
}
