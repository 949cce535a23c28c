import Foundation
import NIOCore

/// Cuts a watch stream into its lines (one JSON event each) with bounded
/// memory: a line longer than `maxLineBytes` is an error, whatever the
/// server sends, and never grows the buffer past the limit.
struct LineSplitter {
    let maxLineBytes: Int
    private var pending: [UInt8] = []

    init(maxLineBytes: Int) {
        self.maxLineBytes = maxLineBytes
    }

    enum Overflow: Error { case lineTooLong }

    /// The complete lines in `buffer` (without the newline; empty lines dropped).
    mutating func lines(in buffer: ByteBuffer) throws(Overflow) -> [Data] {
        var lines: [Data] = []
        var failure: Overflow?
        buffer.withUnsafeReadableBytes { bytes in
            var start = bytes.startIndex
            while let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) {
                let part = bytes[start..<newline]
                if pending.isEmpty {
                    if !part.isEmpty { lines.append(Data(part)) }
                } else {
                    pending.append(contentsOf: part)
                    if pending.count > maxLineBytes { failure = .lineTooLong; return }
                    lines.append(Data(pending))
                    pending.removeAll(keepingCapacity: pending.count <= 1 << 16)
                }
                if let last = lines.last, last.count > maxLineBytes { failure = .lineTooLong; return }
                start = newline + 1
            }
            let rest = bytes[start...]
            if pending.count + rest.count > maxLineBytes { failure = .lineTooLong; return }
            pending.append(contentsOf: rest)
        }
        if let failure { throw failure }
        return lines
    }

    /// Bytes of a line that has not ended: the stream was cut mid-line.
    var hasPartialLine: Bool { !pending.isEmpty }
}
