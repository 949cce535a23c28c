#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxShims
import SystemPackage

/// Path-based calls, for files the agent names by path (its socket, its
/// state directory), not ones found by walking.
extension Syscall {
    /// `mkdir(2)` with `mode` (the umask still applies).
    public static func makeDirectory(_ path: String, mode: UInt32) throws(SystemCallError) {
        _ = try retryingEINTR("mkdir", path: path) { Glibc.mkdir(path, mode_t(mode)) }
    }

    /// `chmod(2)`.
    public static func changeMode(_ path: String, to mode: UInt32) throws(SystemCallError) {
        _ = try retryingEINTR("chmod", path: path) { Glibc.chmod(path, mode_t(mode)) }
    }

    /// `chown(2)` of the group only; the owner stays.
    public static func changeGroup(_ path: String, to group: UInt32) throws(SystemCallError) {
        _ = try retryingEINTR("chown", path: path) { Glibc.chown(path, uid_t.max, gid_t(group)) }
    }

    /// `rename(2)` of one path over another (atomic replacement of `to`).
    public static func rename(_ from: String, to: String) throws(SystemCallError) {
        _ = try retryingEINTR("rename", path: to) { Glibc.rename(from, to) }
    }

    /// `unlink(2)`.
    public static func unlink(_ path: String) throws(SystemCallError) {
        _ = try retryingEINTR("unlink", path: path) { Glibc.unlink(path) }
    }

    /// `realpath(3)`: `path` with every symlink, `.` and `..` resolved.
    public static func realPath(_ path: String) throws(SystemCallError) -> String {
        guard let resolved = Glibc.realpath(path, nil) else {
            throw SystemCallError(call: "realpath", errno: Errno(rawValue: Glibc.errno), path: path)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// `statx(2)` of what `path` leads to, following symlinks (`stat(2)`);
    /// `Syscall.statx(nil, path)` is the `lstat(2)`.
    public static func statxFollowing(_ path: String) throws(SystemCallError) -> FileStatus {
        var raw = vr_statx_t()
        _ = try retryingEINTR("statx", path: path) { vr_statx(AT_FDCWD, path, 0, &raw) }
        return FileStatus(raw)
    }

    /// `access(2)` with `X_OK`: whether this process may execute `path`.
    public static func isExecutable(_ path: String) -> Bool { Glibc.access(path, X_OK) == 0 }

    /// `getpid(2)`.
    public static func processID() -> Int32 { Glibc.getpid() }
}

extension FileStatus {
    public var isSocket: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFSOCK) }
    public var isFIFO: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFIFO) }
    public var isCharacterDevice: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFCHR) }
    public var isBlockDevice: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFBLK) }
}

/// The group database (`getgrnam_r(3)`).
public enum GroupDatabase {
    /// The gid of group `name`; nil when there is no such group.
    public static func groupID(named name: String) throws(SystemCallError) -> UInt32? {
        var size = max(Int(sysconf(Int32(_SC_GETGR_R_SIZE_MAX))), 1024)
        while true {
            var entry = group()
            var result: UnsafeMutablePointer<group>?
            var buffer = [CChar](repeating: 0, count: size)
            let status = getgrnam_r(name, &entry, &buffer, size, &result)
            if status == ERANGE, size < 1 << 20 {
                size *= 2
                continue
            }
            if status == EINTR { continue }
            if status != 0 { throw SystemCallError(call: "getgrnam_r", errno: Errno(rawValue: status), path: name) }
            return result.map { UInt32($0.pointee.gr_gid) }
        }
    }
}

/// `open(2)` flags for `Syscall.openAt`, so callers need not reach libc.
/// (`O_CLOEXEC` is always added.)
public enum OpenFlags {
    public static let readOnly = O_RDONLY
    public static let writeOnly = O_WRONLY
    public static let readWrite = O_RDWR
    public static let create = O_CREAT
    public static let exclusive = O_EXCL
    public static let truncate = O_TRUNC
    public static let append = O_APPEND
    public static let noFollow = O_NOFOLLOW
    public static let directory = O_DIRECTORY
    public static let nonBlocking = O_NONBLOCK
    public static let noControllingTerminal = O_NOCTTY
}
