#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxShims
import SystemPackage

/// Calls `body` until it does not fail with `EINTR`; any other failure becomes a
/// `SystemCallError` naming the call and path. `body` returns -1 on failure and
/// leaves the reason in `errno`, as libc does.
@inline(__always)
public func retryingEINTR<Result: FixedWidthInteger>(
    _ call: String, path: @autoclosure () -> String? = nil, _ body: () -> Result
) throws(SystemCallError) -> Result {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = Glibc.errno
        if code == EINTR { continue }
        throw SystemCallError(call: call, errno: Errno(rawValue: code), path: path())
    }
}

/// Thin, typed wrappers over the Linux calls the agent needs, each wrapped once.
public enum Syscall {
    // MARK: Opening and closing

    /// `openat(2)`; `path` is relative to `directory` unless absolute.
    public static func openAt(
        _ directory: FileDescriptor?, _ path: String, flags: Int32, mode: mode_t = 0
    ) throws(SystemCallError) -> FileDescriptor {
        let dirfd = directory?.rawValue ?? AT_FDCWD
        let fd = try retryingEINTR("openat", path: path) { Glibc.openat(dirfd, path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(rawValue: fd)
    }

    /// `openat(2)` of one entry by its raw name.
    public static func openAt(
        _ directory: FileDescriptor?, _ name: FileName, flags: Int32, mode: mode_t = 0
    ) throws(SystemCallError) -> FileDescriptor {
        let dirfd = directory?.rawValue ?? AT_FDCWD
        let fd = try name.withCString { cName throws(SystemCallError) in
            try retryingEINTR("openat", path: name.description) { Glibc.openat(dirfd, cName, flags | O_CLOEXEC, mode) }
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Opens a directory for walking: never through a symlink, not updating
    /// atimes where the kernel lets us (`O_NOATIME` needs ownership or
    /// CAP_FOWNER; without it we retry plainly rather than fail).
    public static func openDirectory(_ directory: FileDescriptor?, _ path: String) throws(SystemCallError) -> FileDescriptor {
        try openDirectory(directory, FileName(path))
    }

    /// `openDirectory` of one entry by its raw name (a path with `/` works too).
    public static func openDirectory(_ directory: FileDescriptor?, _ name: FileName) throws(SystemCallError) -> FileDescriptor {
        let base = O_RDONLY | O_DIRECTORY | O_NOFOLLOW
        do throws(SystemCallError) {
            return try openAt(directory, name, flags: base | vr_O_NOATIME)
        } catch where error.errno == .notPermitted {
            return try openAt(directory, name, flags: base)
        }
    }

    /// `openat2(2)` into an `O_PATH` descriptor of the directory `path` below
    /// `directory`: `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`,
    /// so no `..`, no absolute path and no symlink anywhere on the way can lead
    /// it out. An empty path opens `directory` itself.
    public static func openBeneath(_ directory: FileDescriptor, _ path: String) throws(SystemCallError) -> FileDescriptor {
        let fd = try retryingEINTR("openat2", path: path) {
            vr_openat2_beneath(directory.rawValue, path.isEmpty ? "." : path, Int32(vr_O_PATH | O_DIRECTORY | O_CLOEXEC))
        }
        return FileDescriptor(rawValue: fd)
    }

    /// `_exit(2)`: ends the process now, without atexit handlers or waiting
    /// for any thread (one may be blocked in the kernel for good).
    public static func exitNow(_ status: Int32) -> Never {
        Glibc._exit(status)
    }

    /// `close(2)`. Not retried on EINTR: on Linux the descriptor is gone anyway.
    public static func close(_ fd: FileDescriptor) {
        _ = Glibc.close(fd.rawValue)
    }

    // MARK: Metadata

    /// `statx(2)` without following symlinks: birth time, mount id and the
    /// mount-root attribute that tells a same-filesystem bind mount apart.
    public static func statx(_ directory: FileDescriptor?, _ path: String) throws(SystemCallError) -> FileStatus {
        var raw = vr_statx_t()
        _ = try retryingEINTR("statx", path: path) {
            vr_statx(directory?.rawValue ?? AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, &raw)
        }
        return FileStatus(raw)
    }

    /// `statx(2)` of one entry by its raw name, without following a symlink.
    public static func statx(_ directory: FileDescriptor?, _ name: FileName) throws(SystemCallError) -> FileStatus {
        var raw = vr_statx_t()
        _ = try name.withCString { cName throws(SystemCallError) in
            try retryingEINTR("statx", path: name.description) {
                vr_statx(directory?.rawValue ?? AT_FDCWD, cName, AT_SYMLINK_NOFOLLOW, &raw)
            }
        }
        return FileStatus(raw)
    }

    /// `statx(2)` on an open descriptor (`AT_EMPTY_PATH`).
    public static func statx(_ fd: FileDescriptor, path: String? = nil, fields: StatusFields = .all) throws(SystemCallError) -> FileStatus {
        var raw = vr_statx_t()
        _ = try retryingEINTR("statx", path: path) {
            vr_statx_fields(fd.rawValue, "", vr_AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, fields.withBirthTime, &raw)
        }
        return FileStatus(raw)
    }

    // MARK: Directories

    /// `getdents64(2)` into `buffer`; returns the bytes filled, 0 at the end.
    public static func getdents(
        _ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, path: String? = nil
    ) throws(SystemCallError) -> Int {
        try retryingEINTR("getdents64", path: path) { vr_getdents64(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    /// Every entry of the open directory `fd` but `.` and `..`.
    public static func readDirectory(_ fd: FileDescriptor, path: String? = nil) throws(SystemCallError) -> [DirectoryEntry] {
        var entries: [DirectoryEntry] = []
        try forEachDirectoryEntry(fd, path: path) { entry in
            entries.append(DirectoryEntry(name: entry.fileName, inode: entry.inode, type: entry.type))
        }
        return entries
    }

    /// Calls `body` with every entry of the open directory `fd` but `.` and
    /// `..`, straight from the `getdents64` buffer: a walk that only needs
    /// most names for one `statx` builds no `FileName` for them.
    public static func forEachDirectoryEntry(
        _ fd: FileDescriptor, path: String? = nil, _ body: (borrowing RawDirectoryEntry) -> Void
    ) throws(SystemCallError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let filled = try getdents(fd, into: buffer, path: path)
            if filled == 0 { return }
            var offset = 0
            while offset < filled {
                let record = buffer.baseAddress! + offset
                let inode = record.loadUnaligned(as: UInt64.self)
                let length = Int(record.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
                let type = record.load(fromByteOffset: 18, as: UInt8.self)
                // The name is NUL-terminated within the record (padding follows).
                let name = record.advanced(by: 19).assumingMemoryBound(to: CChar.self)
                let nameLength = strnlen(name, length - 19)
                offset += length
                if name[0] == 0x2E, nameLength == 1 || (nameLength == 2 && name[1] == 0x2E) { continue }
                body(RawDirectoryEntry(name: name, nameLength: nameLength, inode: inode, type: DirectoryEntry.Kind(rawValue: type) ?? .unknown))
            }
        }
    }

    /// `statx(2)` of one entry as `forEachDirectoryEntry` gave it, without following a symlink.
    public static func statx(
        _ directory: FileDescriptor, _ entry: borrowing RawDirectoryEntry, fields: StatusFields = .all
    ) throws(SystemCallError) -> FileStatus {
        var raw = vr_statx_t()
        _ = try retryingEINTR("statx", path: entry.fileName.description) {
            vr_statx_fields(directory.rawValue, entry.name, AT_SYMLINK_NOFOLLOW, fields.withBirthTime, &raw)
        }
        return FileStatus(raw)
    }

    // MARK: Removal

    /// `unlinkat(2)` of a textual path; `removeDirectory` passes `AT_REMOVEDIR`.
    public static func unlinkAt(_ directory: FileDescriptor, _ name: String, removeDirectory: Bool) throws(SystemCallError) {
        _ = try retryingEINTR(removeDirectory ? "unlinkat(AT_REMOVEDIR)" : "unlinkat", path: name) {
            Glibc.unlinkat(directory.rawValue, name, removeDirectory ? AT_REMOVEDIR : 0)
        }
    }

    /// `unlinkat(2)` of one entry by its raw name.
    public static func unlinkAt(_ directory: FileDescriptor, _ name: FileName, removeDirectory: Bool) throws(SystemCallError) {
        _ = try name.withCString { cName throws(SystemCallError) in
            try retryingEINTR(removeDirectory ? "unlinkat(AT_REMOVEDIR)" : "unlinkat", path: name.description) {
                Glibc.unlinkat(directory.rawValue, cName, removeDirectory ? AT_REMOVEDIR : 0)
            }
        }
    }

    /// A plain unmount, never lazy, never forced, of the mount on entry
    /// `name` of the open directory `directory`,
    /// through `/proc/self/fd/N/name` with `UMOUNT_NOFOLLOW`: the directory
    /// is the one the descriptor holds, whatever was renamed since, and a
    /// symlink put in place of `name` is not followed. (A descriptor on the
    /// mount itself would keep it busy, so the parent is what we hold.)
    /// `path` names it in errors.
    public static func unmount(_ name: FileName, in directory: FileDescriptor, path: String) throws(SystemCallError) {
        let target = FileName(bytes: Array("/proc/self/fd/\(directory.rawValue)/".utf8) + name.bytes)
        _ = try target.withCString { cTarget throws(SystemCallError) in
            try retryingEINTR("umount2", path: path) { Glibc.umount2(cTarget, vr_UMOUNT_NOFOLLOW) }
        }
    }

    // MARK: Locks

    /// Tries `flock(LOCK_EX|LOCK_NB)`. Returns false when another holder has it.
    /// The lock is ours until `fd` is closed or `unlock` is called.
    public static func tryLockExclusive(_ fd: FileDescriptor, path: String? = nil) throws(SystemCallError) -> Bool {
        do throws(SystemCallError) {
            _ = try retryingEINTR("flock", path: path) { vr_flock(fd.rawValue, LOCK_EX | LOCK_NB) }
            return true
        } catch where error.errno == .wouldBlock {
            return false
        }
    }

    /// Waits for `flock(LOCK_EX)`: serializes short critical sections between
    /// processes (opening and migrating the access store).
    public static func lockExclusive(_ fd: FileDescriptor, path: String? = nil) throws(SystemCallError) {
        _ = try retryingEINTR("flock", path: path) { vr_flock(fd.rawValue, LOCK_EX) }
    }

    /// Releases a `flock`.
    public static func unlock(_ fd: FileDescriptor, path: String? = nil) throws(SystemCallError) {
        _ = try retryingEINTR("flock", path: path) { vr_flock(fd.rawValue, LOCK_UN) }
    }

    // MARK: Reading and waiting

    /// `read(2)` into `buffer`; returns bytes read.
    public static func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, path: String? = nil) throws(SystemCallError) -> Int {
        try retryingEINTR("read", path: path) { Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    // MARK: Writing files

    /// One `write(2)` from `buffer`; returns the bytes written (maybe fewer).
    public static func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, path: String? = nil) throws(SystemCallError) -> Int {
        try retryingEINTR("write", path: path) { Glibc.write(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    /// `write(2)` until every byte of `bytes` is written.
    public static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8], path: String? = nil) throws(SystemCallError) {
        var offset = 0
        while offset < bytes.count {
            let start = offset
            offset += try retryingEINTR("write", path: path) {
                bytes.withUnsafeBytes { Glibc.write(fd.rawValue, $0.baseAddress! + start, $0.count - start) }
            }
        }
    }

    /// `fsync(2)`.
    public static func fsync(_ fd: FileDescriptor, path: String? = nil) throws(SystemCallError) {
        _ = try retryingEINTR("fsync", path: path) { Glibc.fsync(fd.rawValue) }
    }

    /// `renameat(2)` within one directory (atomic replacement of `to`).
    public static func rename(_ from: String, to: String, in directory: FileDescriptor) throws(SystemCallError) {
        _ = try retryingEINTR("renameat", path: to) { Glibc.renameat(directory.rawValue, from, directory.rawValue, to) }
    }

    /// `poll(2)` on the given descriptors; returns the number ready (0 on timeout).
    public static func poll(_ fds: inout [pollfd], timeoutMilliseconds: Int32) throws(SystemCallError) -> Int {
        let count = fds.count
        return Int(try fds.withUnsafeMutableBufferPointer { buffer throws(SystemCallError) in
            try retryingEINTR("poll") { Glibc.poll(buffer.baseAddress, nfds_t(count), timeoutMilliseconds) }
        })
    }

    // MARK: inotify

    /// `inotify_init1(IN_NONBLOCK|IN_CLOEXEC)`.
    public static func inotifyInit() throws(SystemCallError) -> FileDescriptor {
        let fd = try retryingEINTR("inotify_init1") { Glibc.inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) }
        return FileDescriptor(rawValue: fd)
    }

    /// `inotify_add_watch(2)`; returns the watch descriptor.
    public static func inotifyAddWatch(_ fd: FileDescriptor, _ path: String, mask: UInt32) throws(SystemCallError) -> Int32 {
        try retryingEINTR("inotify_add_watch", path: path) { Glibc.inotify_add_watch(fd.rawValue, path, mask) }
    }

    /// `inotify_rm_watch(2)`.
    public static func inotifyRemoveWatch(_ fd: FileDescriptor, _ watch: Int32) throws(SystemCallError) {
        _ = try retryingEINTR("inotify_rm_watch") { Glibc.inotify_rm_watch(fd.rawValue, watch) }
    }
}

// MARK: Filesystem space

extension Syscall {
    /// `statvfs(3)`: free space as an unprivileged user sees it (`f_bavail`,
    /// `f_favail`), the numbers the kubelet's eviction manager judges by.
    public static func statvfs(_ path: String) throws(SystemCallError) -> (totalBytes: UInt64, availableBytes: UInt64, totalInodes: UInt64, availableInodes: UInt64) {
        var result = vr_space_t()
        _ = try retryingEINTR("statvfs", path: path) { vr_statvfs(path, &result) }
        return (result.total_bytes, result.available_bytes, result.total_inodes, result.available_inodes)
    }

    /// `fstatvfs(3)`: the filesystem of what `fd` names, wherever a path to it leads now.
    public static func fstatvfs(_ fd: FileDescriptor, path: String) throws(SystemCallError) -> (totalBytes: UInt64, availableBytes: UInt64, totalInodes: UInt64, availableInodes: UInt64) {
        var result = vr_space_t()
        _ = try retryingEINTR("fstatvfs", path: path) { vr_fstatvfs(fd.rawValue, &result) }
        return (result.total_bytes, result.available_bytes, result.total_inodes, result.available_inodes)
    }
}
