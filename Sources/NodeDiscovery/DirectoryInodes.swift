/// The inode numbers of the directories one walk opened, kept by the scan
/// cache for every volume until its next walk, only to be matched against
/// the few inodes `/proc/locks` lists.
///
/// Stored sorted, as LEB128-encoded gaps between neighbours: a directory
/// tree's inodes are mostly allocated close together, so a directory costs
/// one to three bytes, where a `Set<UInt64>` costs about twenty (101,000
/// directories: about 0.2 MiB instead of 2 MiB, all of it held between cycles).
public struct DirectoryInodes: Sendable, Equatable {
    private let bytes: [UInt8]
    public let count: Int

    public init(_ inodes: some Sequence<UInt64>) {
        var sorted = Array(inodes)
        sorted.sort()
        var gaps: [UInt64] = []
        gaps.reserveCapacity(sorted.count)
        var previous: UInt64?
        for inode in sorted where inode != previous {
            gaps.append(inode - (previous ?? 0))
            previous = inode
        }
        // Sized exactly: the encoding is kept, the scratch arrays are not.
        let size = gaps.reduce(0) { $0 + Self.encodedSize($1) }
        bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var at = 0
            for var gap in gaps {
                while gap >= 0x80 {
                    buffer[at] = UInt8(truncatingIfNeeded: gap) | 0x80
                    gap >>= 7
                    at += 1
                }
                buffer[at] = UInt8(gap)
                at += 1
            }
            initialized = at
        }
        count = gaps.count
    }

    /// Bytes held for the encoding.
    public var encodedBytes: Int { bytes.count }

    /// True when none of `inodes` is one of these directories.
    public func isDisjoint(with inodes: Set<UInt64>) -> Bool {
        guard !inodes.isEmpty else { return true }
        var inode: UInt64 = 0
        var gap: UInt64 = 0
        var shift: UInt64 = 0
        for byte in bytes {
            gap |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 != 0 {
                shift += 7
                continue
            }
            inode &+= gap
            if inodes.contains(inode) { return false }
            gap = 0
            shift = 0
        }
        return true
    }

    private static func encodedSize(_ value: UInt64) -> Int {
        value == 0 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
    }
}
