#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What identifies one version of a file: a rewrite in place changes the
/// size or times, an atomic rename or symlink swap (kubelet-client-current.pem,
/// the service account's `..data`) changes the inode.
public struct FileIdentity: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    public var size: UInt64
    public var modified: KernelTime
    public var changed: KernelTime

    public init(device: UInt64, inode: UInt64, size: UInt64, modified: KernelTime, changed: KernelTime) {
        self.device = device
        self.inode = inode
        self.size = size
        self.modified = modified
        self.changed = changed
    }

    public init(_ status: FileStatus) {
        self.init(device: status.device, inode: status.inode, size: status.size, modified: status.modified, changed: status.changed)
    }

    /// The device number as `stat(2)` reports it (glibc's `makedev` of major
    /// and minor), for text that was written from `st_dev` before.
    public var statDeviceNumber: UInt64 {
        let major = device >> 32, minor = device & 0xffff_ffff
        return (major & 0xffff_f000) << 32 | (major & 0xfff) << 8 | (minor & 0xffff_ff00) << 12 | (minor & 0xff)
    }

    /// The identity of what `path` leads to now (symlinks followed).
    public static func of(_ path: String) throws(SystemCallError) -> FileIdentity {
        let fd = try Syscall.openAt(nil, path, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY)
        defer { Syscall.close(fd) }
        return FileIdentity(try Syscall.statx(fd, path: path))
    }
}
