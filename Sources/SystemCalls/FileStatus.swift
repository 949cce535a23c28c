#if canImport(Glibc)
import Glibc
#endif
import CLinuxShims

/// A timestamp from the kernel, seconds and nanoseconds since the epoch.
public struct KernelTime: Sendable, Hashable, Comparable {
    public var seconds: Int64
    public var nanoseconds: UInt32

    public init(seconds: Int64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// The earliest timestamp that a change to a file from now on can carry:
    /// the realtime clock now, less one tick of the coarse clock the kernel
    /// stamps files with (it lags the precise clock by up to a tick).
    public static func earliestStampFromNow() -> KernelTime {
        var now = timespec(), tick = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if clock_getres(CLOCK_REALTIME_COARSE, &tick) != 0 { tick = timespec(tv_sec: 0, tv_nsec: 10_000_000) }
        let total = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec) - (Int64(tick.tv_sec) * 1_000_000_000 + Int64(tick.tv_nsec) + 1_000_000)
        return KernelTime(seconds: total / 1_000_000_000, nanoseconds: UInt32(total % 1_000_000_000))
    }

    /// Seconds since 1970 as a double, the form Foundation's `Date` takes.
    public var secondsSince1970: Double { Double(seconds) + Double(nanoseconds) / 1e9 }

    public static func < (lhs: KernelTime, rhs: KernelTime) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }
}

/// Which fields a `statx` asks for. Every call gets the basic ones and the
/// mount ID; the birth time (`FileStatus.born`) costs ext4 extra work per
/// call, so a walk over every entry of a tree leaves it out.
public enum StatusFields: Sendable {
    case all
    case withoutBirthTime

    var withBirthTime: Int32 { self == .all ? 1 : 0 }
}

/// What `statx(2)` said about one entry.
public struct FileStatus: Sendable, Hashable {
    public var mode: UInt32
    public var inode: UInt64
    public var device: UInt64
    public var size: UInt64
    public var blocks: UInt64
    public var linkCount: UInt32
    /// The owner's uid.
    public var owner: UInt32
    public var mountID: UInt64
    public var modified: KernelTime
    public var changed: KernelTime
    public var accessed: KernelTime
    /// Creation time, when the file system records one and the call asked
    /// for it (`StatusFields.all`).
    public var born: KernelTime?
    /// The entry is the root of a mount (bind mounts on the same file system
    /// included); nil when the kernel cannot say.
    public var isMountRoot: Bool?

    init(_ raw: vr_statx_t) {
        mode = raw.mode
        inode = raw.ino
        device = UInt64(raw.devMajor) << 32 | UInt64(raw.devMinor)
        size = raw.size
        blocks = raw.blocks
        linkCount = raw.nlink
        owner = raw.uid
        mountID = raw.mountID
        modified = KernelTime(seconds: raw.mtimeSec, nanoseconds: raw.mtimeNsec)
        changed = KernelTime(seconds: raw.ctimeSec, nanoseconds: raw.ctimeNsec)
        accessed = KernelTime(seconds: raw.atimeSec, nanoseconds: raw.atimeNsec)
        born = raw.mask & vr_STATX_BTIME != 0 ? KernelTime(seconds: raw.btimeSec, nanoseconds: raw.btimeNsec) : nil
        isMountRoot = raw.attributesMask & vr_STATX_ATTR_MOUNT_ROOT != 0
            ? raw.attributes & vr_STATX_ATTR_MOUNT_ROOT != 0 : nil
    }

    public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    /// The device as mountinfo and `lsblk` write it: `major:minor`.
    public var deviceName: String { "\(device >> 32):\(device & 0xffff_ffff)" }
    public var isSymlink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }
    public var isRegular: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
    /// Bytes on disk (512-byte blocks), what deleting frees.
    public var allocatedBytes: UInt64 { blocks * 512 }
}

/// One `getdents64` record.
public struct DirectoryEntry: Sendable, Hashable {
    public init(name: FileName, inode: UInt64, type: Kind) {
        self.name = name
        self.inode = inode
        self.type = type
    }

    /// `d_type` values; file systems that do not fill it say `unknown`.
    public enum Kind: UInt8, Sendable {
        case unknown = 0, fifo = 1, characterDevice = 2, directory = 4, blockDevice = 6
        case regular = 8, symlink = 10, socket = 12
    }

    public var name: FileName
    public var inode: UInt64
    public var type: Kind
}

/// One `getdents64` record while `Syscall.forEachDirectoryEntry` reads it:
/// the name points into the call's buffer and is valid only during the call.
public struct RawDirectoryEntry: ~Copyable {
    /// NUL-terminated.
    public let name: UnsafePointer<CChar>
    public let nameLength: Int
    public let inode: UInt64
    public let type: DirectoryEntry.Kind

    /// The name, copied out of the buffer.
    public var fileName: FileName { FileName(copying: name, length: nameLength) }

    /// Whether the name is `text`, compared in place.
    public func nameEquals(_ text: StaticString) -> Bool {
        nameLength == text.utf8CodeUnitCount && memcmp(name, text.utf8Start, nameLength) == 0
    }
}
