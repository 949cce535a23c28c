/// The watch table: what each watch descriptor stands for, stored by wd.
///
/// The kernel hands out watch descriptors counting up from 1, so the table is
/// an array of fixed-size chunks indexed by wd: it grows a chunk at a time,
/// never rehashes, and costs `MemoryLayout<WatchEntry?>.stride` (24 bytes)
/// a watch. A dictionary cost 36 bytes a bucket at a load of 0.4-0.75, and
/// each doubling held the old and the new storage at once: 14 MiB at peak
/// for 101,302 watches, against 2.4 MiB here.
struct WatchTable {
    static let chunkShift = 12
    static let chunkSize = 1 << chunkShift

    /// Chunk n holds wds n * chunkSize ..< (n + 1) * chunkSize; an empty array
    /// for a chunk without watches.
    private var chunks: [ContiguousArray<WatchEntry?>] = []
    private var liveInChunk: [Int32] = []
    private(set) var count = 0

    subscript(wd: Int32) -> WatchEntry? {
        get {
            guard wd >= 0 else { return nil }
            let chunk = Int(wd) >> Self.chunkShift
            guard chunk < chunks.count, !chunks[chunk].isEmpty else { return nil }
            return chunks[chunk][Int(wd) & (Self.chunkSize - 1)]
        }
        set {
            guard wd >= 0 else { return }
            let chunk = Int(wd) >> Self.chunkShift
            let slot = Int(wd) & (Self.chunkSize - 1)
            if let newValue {
                while chunks.count <= chunk {
                    chunks.append([])
                    liveInChunk.append(0)
                }
                if chunks[chunk].isEmpty { chunks[chunk] = ContiguousArray(repeating: nil, count: Self.chunkSize) }
                if chunks[chunk][slot] == nil {
                    count += 1
                    liveInChunk[chunk] += 1
                }
                chunks[chunk][slot] = newValue
            } else {
                guard chunk < chunks.count, !chunks[chunk].isEmpty, chunks[chunk][slot] != nil else { return }
                chunks[chunk][slot] = nil
                count -= 1
                liveInChunk[chunk] -= 1
                if liveInChunk[chunk] == 0 { chunks[chunk] = [] }
            }
        }
    }

    @discardableResult
    mutating func removeValue(forKey wd: Int32) -> WatchEntry? {
        let entry = self[wd]
        if entry != nil { self[wd] = nil }
        return entry
    }

    /// The wds whose entry `matches`, in wd order (a scan of the whole table:
    /// for rescans, removals and tests, never per event).
    func watchDescriptors(where matches: (WatchEntry) -> Bool) -> [Int32] {
        var found: [Int32] = []
        for (chunk, entries) in chunks.enumerated() where !entries.isEmpty {
            for (slot, entry) in entries.enumerated() {
                if let entry, matches(entry) { found.append(Int32(chunk << Self.chunkShift | slot)) }
            }
        }
        return found
    }
}
