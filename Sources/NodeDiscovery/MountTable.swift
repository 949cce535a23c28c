import Foundation
import ReaperCore
import SystemCalls

/// The mounts of this mount namespace, from `/proc/self/mountinfo`.
///
/// `st_dev` alone misses same-file-system bind mounts, so discovery combines
/// this table with `statx`'s mount-root attribute (design §5.2).
public struct MountTable: Sendable, Hashable {
    public var mounts: [MountInfo]
    /// The mount ID of each entry of `mounts` (what `statx` reports as
    /// `stx_mnt_id`); 0 when the table was built by hand.
    public var mountIDs: [UInt64]

    public init(mounts: [MountInfo]) {
        self.mounts = mounts
        mountIDs = Array(repeating: 0, count: mounts.count)
    }

    /// A mountinfo larger than this is refused (a node with 100,000 mounts has about 16 MiB).
    static let maxBytes = 256 << 20

    /// Reads and parses a mountinfo file.
    public static func read(path: String = "/proc/self/mountinfo") throws -> MountTable {
        // Read to the end: /proc files say size 0 and come a page per read(2), and
        // Foundation's String(contentsOfFile:) stops after the first ~4 KiB,
        // silently dropping every later mount of a busy node. Non-blocking and
        // regular files only (/proc is not ours); /proc/self is a symlink.
        let bytes: [UInt8]
        do {
            bytes = try RegularFileReader.read(path, limit: maxBytes, followSymlinks: true)
        } catch {
            throw MountTableError(description: "\(path): \(error)")
        }
        return MountTable(mountinfo: String(decoding: bytes, as: UTF8.self))
    }

    /// Parses mountinfo text: `id parent major:minor root mountpoint options [optional...] - fstype source superoptions`.
    public init(mountinfo text: String) {
        var mounts: [MountInfo] = []
        var ids: [UInt64] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 7, let id = UInt64(fields[0]), let separator = fields.firstIndex(of: "-"),
                  separator + 1 < fields.count else { continue }
            let mountPoint = Self.unescape(String(fields[4]))
            mounts.append(MountInfo(mountPoint: mountPoint, filesystemType: String(fields[separator + 1])))
            ids.append(id)
        }
        self.mounts = mounts
        mountIDs = ids
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
    static func unescape(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Mounts at `path` or anywhere below it.
    public func mounts(atOrUnder path: String) -> [MountInfo] {
        // `/a/b/` names `/a/b`: a trailing slash must not hide a mount at the path itself.
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        let prefix = trimmed.hasSuffix("/") ? trimmed : trimmed + "/"
        return mounts.filter { $0.mountPoint == trimmed || $0.mountPoint.hasPrefix(prefix) }
    }

    /// The file system type mounted at exactly `path` (the topmost mount wins).
    public func filesystemType(at path: String) -> String? {
        mounts.last { $0.mountPoint == path }?.filesystemType
    }
}

/// A mountinfo file that could not be read as one.
struct MountTableError: Error, CustomStringConvertible {
    var description: String
}
