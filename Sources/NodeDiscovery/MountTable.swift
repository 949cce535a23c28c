import Foundation
import ReaperCore
import SystemCalls

/// The mounts of this mount namespace, from `/proc/self/mountinfo`.
///
/// `st_dev` alone misses same-file-system bind mounts, so discovery combines
/// this table with `statx`'s mount-root attribute (design §5.2).
public struct MountTable: Sendable, Hashable {
    public var mounts: [MountInfo] {
        didSet { index = MountIndex(mounts) }
    }
    /// The mount ID of each entry of `mounts` (what `statx` reports as
    /// `stx_mnt_id`); 0 when the table was built by hand.
    public var mountIDs: [UInt64]
    /// `mounts` sorted for lookups, rebuilt whenever `mounts` changes: a
    /// cycle asks once or twice per volume, and a node with a thousand
    /// volumes has about as many mounts.
    private var index: MountIndex

    public init(mounts: [MountInfo]) {
        self.mounts = mounts
        mountIDs = Array(repeating: 0, count: mounts.count)
        index = MountIndex(mounts)
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
        index = MountIndex(mounts)
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

    /// Mounts at `path` or anywhere below it, in table order.
    public func mounts(atOrUnder path: String) -> [MountInfo] {
        // `/a/b/` names `/a/b`: a trailing slash must not hide a mount at the path itself.
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        let prefix = trimmed.hasSuffix("/") ? trimmed : trimmed + "/"
        let isUnder = { (mountPoint: String) in mountPoint == trimmed || mountPoint.hasPrefix(prefix) }
        return index.positions(startingWith: trimmed, in: mounts, where: isUnder).map { mounts[$0] }
    }

    /// The file system type mounted at exactly `path` (the topmost mount wins).
    public func filesystemType(at path: String) -> String? {
        index.topmostType[path]
    }
}

/// Positions in a mount table, sorted so the mounts under a path are found
/// without testing every mount. String comparison is by canonical
/// equivalence; for ASCII text that is byte comparison, so ASCII mount
/// points are kept in byte order (those a path's bytes start are together,
/// right where the path would sort) and any other is always tested.
struct MountIndex: Sendable, Hashable {
    /// Positions of the ASCII mount points, by their bytes.
    private var asciiOrder: [Int] = []
    /// Positions of the others, in table order.
    private var others: [Int] = []
    /// The file system type of the last mount at each mount point.
    private(set) var topmostType: [String: String] = [:]

    init(_ mounts: [MountInfo]) {
        for (position, mount) in mounts.enumerated() {
            if Self.isASCII(mount.mountPoint) { asciiOrder.append(position) } else { others.append(position) }
            topmostType[mount.mountPoint] = mount.filesystemType
        }
        asciiOrder.sort { mounts[$0].mountPoint.utf8.lexicographicallyPrecedes(mounts[$1].mountPoint.utf8) }
    }

    /// Ascending positions of the mounts `isUnder` accepts, which must
    /// accept only mount points that start with `text`.
    func positions(startingWith text: String, in mounts: [MountInfo], where isUnder: (String) -> Bool) -> [Int] {
        // A non-ASCII path may equal ASCII text canonically (U+212A is K): test every mount.
        guard Self.isASCII(text) else { return mounts.indices.filter { isUnder(mounts[$0].mountPoint) } }
        var found = others.filter { isUnder(mounts[$0].mountPoint) }
        var low = 0, high = asciiOrder.count
        while low < high {
            let middle = (low + high) / 2
            if mounts[asciiOrder[middle]].mountPoint.utf8.lexicographicallyPrecedes(text.utf8) { low = middle + 1 } else { high = middle }
        }
        while low < asciiOrder.count, mounts[asciiOrder[low]].mountPoint.utf8.starts(with: text.utf8) {
            if isUnder(mounts[asciiOrder[low]].mountPoint) { found.append(asciiOrder[low]) }
            low += 1
        }
        return found.sorted()
    }

    private static func isASCII(_ text: String) -> Bool { text.utf8.allSatisfy { $0 < 0x80 } }
}

/// A mountinfo file that could not be read as one.
struct MountTableError: Error, CustomStringConvertible {
    var description: String
}
