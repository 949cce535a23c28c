import ReaperCore
import SystemCalls
import SystemPackage

/// Deletes directory trees without ever following a symlink or crossing a
/// mount (design §5.2-5.3): fd-relative (`openat` + `unlinkat`), iterative,
/// device and inode re-checked after every open, every directory flock-ed
/// while it is emptied so a tmpfiles-convention holder stops us.
public struct SafeRemover: Sendable {
    public init() {}

    /// One directory being emptied.
    private struct Frame {
        var fd: FileDescriptor
        var path: String
        var name: String
        var pendingDirectories: [String]
        var listed: Bool
    }

    /// Removes directory `name` inside the open directory `parent` and all it
    /// holds. `path` is its absolute path, for reports. Stops at the first
    /// mount, held lock, swap or unreadable entry; what was removed until then
    /// stays removed (callers check the whole tree right before calling).
    /// `measureSizes`: statx every file to count the bytes freed (for trees no
    /// scan measured just before, such as an orphan's pod directory).
    public func removeTree(named name: String, in parent: FileDescriptor, path: String, measureSizes: Bool = false) throws(RemovalError) -> RemovalStats {
        var stats = RemovalStats()
        let rootStatus = try status(of: name, in: parent, path: path)
        guard rootStatus.isDirectory else {
            throw RemovalError(.changedDuringRemoval, path: path, detail: "no longer a directory")
        }
        if rootStatus.isMountRoot == true {
            throw RemovalError(.mounted, path: path, detail: "is a mount point")
        }
        let root = try openVerified(name, in: parent, path: path, expected: rootStatus, root: rootStatus)
        var stack = [Frame(fd: root, path: path, name: name, pendingDirectories: [], listed: false)]
        defer { for frame in stack { Syscall.close(frame.fd) } }

        while !stack.isEmpty {
            let top = stack.count - 1
            if !stack[top].listed {
                stack[top].listed = true
                stack[top].pendingDirectories = try emptyOfNonDirectories(stack[top], root: rootStatus, measureSizes: measureSizes, stats: &stats)
            }
            if let child = stack[top].pendingDirectories.popLast() {
                let childPath = stack[top].path + "/" + child
                let status = try status(of: child, in: stack[top].fd, path: childPath)
                try checkSameMount(status, root: rootStatus, path: childPath)
                let fd = try openVerified(child, in: stack[top].fd, path: childPath, expected: status, root: rootStatus)
                stack.append(Frame(fd: fd, path: childPath, name: child, pendingDirectories: [], listed: false))
                continue
            }
            // Emptied: remove it from its parent.
            let done = stack.removeLast()
            Syscall.close(done.fd)
            let parentFD = stack.last?.fd ?? parent
            try unlink(done.name, in: parentFD, path: done.path, directory: true)
            stats.filesRemoved += 1
        }
        stats.bytesFreed += rootStatus.allocatedBytes
        return stats
    }

    /// `rmdir` of an empty directory: the only removal network and CSI
    /// volumes ever get (design §5.5).
    public func removeEmptyDirectory(named name: String, in parent: FileDescriptor, path: String) throws(RemovalError) {
        let status = try status(of: name, in: parent, path: path)
        guard status.isDirectory else {
            throw RemovalError(.changedDuringRemoval, path: path, detail: "no longer a directory")
        }
        if status.isMountRoot == true { throw RemovalError(.mounted, path: path, detail: "is a mount point") }
        try unlink(name, in: parent, path: path, directory: true)
    }

    /// Removes a regular file or symlink `name` (never what a symlink points to).
    public func removeFile(named name: String, in parent: FileDescriptor, path: String) throws(RemovalError) -> UInt64 {
        let status = try status(of: name, in: parent, path: path)
        if status.isDirectory { throw RemovalError(.changedDuringRemoval, path: path, detail: "is a directory") }
        try unlink(name, in: parent, path: path, directory: false)
        return status.allocatedBytes
    }

    // MARK: Steps

    /// Opens a directory without following symlinks, checks it is the one we
    /// looked at (device and inode), on our mount, and takes its flock.
    private func openVerified(
        _ name: String, in parent: FileDescriptor, path: String, expected: FileStatus, root: FileStatus
    ) throws(RemovalError) -> FileDescriptor {
        let fd: FileDescriptor
        do {
            fd = try Syscall.openDirectory(parent, name)
        } catch {
            throw RemovalError.from(error, path: path)
        }
        do throws(RemovalError) {
            let opened: FileStatus
            do { opened = try Syscall.statx(fd, path: path) } catch { throw RemovalError.from(error, path: path) }
            guard opened.inode == expected.inode, opened.device == expected.device else {
                throw RemovalError(.changedDuringRemoval, path: path, detail: "swapped between check and open")
            }
            try checkSameMount(opened, root: root, path: path)
            let locked: Bool
            do { locked = try Syscall.tryLockExclusive(fd, path: path) } catch { throw RemovalError.from(error, path: path) }
            guard locked else {
                throw RemovalError(.lockHeld, path: path, detail: "flock held by another process")
            }
            return fd
        } catch {
            Syscall.close(fd)
            throw error
        }
    }

    /// `statx` of `name`, its failure as the removal error it means.
    private func status(of name: String, in parent: FileDescriptor, path: String) throws(RemovalError) -> FileStatus {
        do {
            return try Syscall.statx(parent, name)
        } catch {
            throw RemovalError.from(error, path: path)
        }
    }

    /// `unlinkat`, its failure as the removal error it means.
    private func unlink(_ name: String, in parent: FileDescriptor, path: String, directory: Bool) throws(RemovalError) {
        do {
            try Syscall.unlinkAt(parent, name, removeDirectory: directory)
        } catch {
            throw RemovalError.from(error, path: path)
        }
    }

    private func checkSameMount(_ status: FileStatus, root: FileStatus, path: String) throws(RemovalError) {
        if status.isMountRoot == true || status.mountID != root.mountID || status.device != root.device {
            throw RemovalError(.mounted, path: path, detail: "is a mount point")
        }
    }

    /// Unlinks every non-directory in the frame's directory; returns its subdirectories.
    private func emptyOfNonDirectories(_ frame: Frame, root: FileStatus, measureSizes: Bool, stats: inout RemovalStats) throws(RemovalError) -> [String] {
        let entries: [DirectoryEntry]
        do {
            entries = try Syscall.readDirectory(frame.fd, path: frame.path)
        } catch {
            throw RemovalError.from(error, path: frame.path)
        }
        var directories: [String] = []
        for entry in entries {
            let entryPath = frame.path + "/" + entry.name
            var isDirectory = entry.type == .directory
            var size: UInt64 = 0
            // Only an unknown d_type needs a statx here: directories are checked
            // (mount, identity) when descended into, and unlinking a file that is
            // a mount point fails with EBUSY. Callers take sizes from their scan.
            if entry.type == .unknown || (measureSizes && entry.type == .regular) {
                let status = try status(of: entry.name, in: frame.fd, path: entryPath)
                isDirectory = status.isDirectory
                size = status.allocatedBytes
                if status.isMountRoot == true || status.mountID != root.mountID {
                    throw RemovalError(.mounted, path: entryPath, detail: "is a mount point")
                }
            }
            if isDirectory {
                directories.append(entry.name)
                continue
            }
            try unlink(entry.name, in: frame.fd, path: entryPath, directory: false)
            stats.filesRemoved += 1
            stats.bytesFreed += size
        }
        return directories
    }
}
