
/// The keys of one open object. Up to `linearLimit` keys (most objects) are
/// compared directly; past that they go into an open-addressing table hashed
/// with the process-seeded `Hasher`, so crafted keys cannot make it
/// quadratic. Keys are compared by their unescaped text: `"a"` and
/// `"\u0061"` are the same key. Storage is kept from one object to the next.
struct KeyTable {
    struct Key {
        /// The raw text between the quotes.
        var range: Range<Int>
        var hasEscapes: Bool
    }

    static let linearLimit = 16

    private var keys: [Key] = []
    /// Pairs of (index in `keys` + 1, hash); 0: empty. Only past `linearLimit` keys.
    private var slots: [Int] = []

    mutating func reset() {
        keys.removeAll(keepingCapacity: keys.capacity <= 1024)
        // A small table is kept for the next object, a big one let go.
        if slots.count > 1024 { slots = [] }
    }

    /// Adds `key`; returns an earlier equal key instead.
    mutating func insert(_ key: Key, in bytes: UnsafeBufferPointer<UInt8>) -> Key? {
        if keys.count < Self.linearLimit {
            for earlier in keys where Self.equal(earlier, key, in: bytes) { return earlier }
            keys.append(key)
            if keys.count == Self.linearLimit { rehash(bytes) }
            return nil
        }
        let hash = Self.hash(key, in: bytes)
        let mask = slots.count / 2 - 1
        var position = hash & mask
        while slots[2 * position] != 0 {
            let earlier = keys[slots[2 * position] - 1]
            if slots[2 * position + 1] == hash, Self.equal(earlier, key, in: bytes) { return earlier }
            position = (position + 1) & mask
        }
        keys.append(key)
        slots[2 * position] = keys.count
        slots[2 * position + 1] = hash
        if keys.count * 4 > slots.count { rehash(bytes) }
        return nil
    }

    /// Rebuilds the table at twice the keys' count, at most half full.
    private mutating func rehash(_ bytes: UnsafeBufferPointer<UInt8>) {
        var capacity = 32
        while capacity < keys.count * 2 { capacity *= 2 }
        if slots.count == capacity * 2 {
            slots.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        } else {
            slots = [Int](repeating: 0, count: capacity * 2)
        }
        let mask = capacity - 1
        for (index, key) in keys.enumerated() {
            let hash = Self.hash(key, in: bytes)
            var position = hash & mask
            while slots[2 * position] != 0 { position = (position + 1) & mask }
            slots[2 * position] = index + 1
            slots[2 * position + 1] = hash
        }
    }

    private static func hash(_ key: Key, in bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var hasher = Hasher()
        if key.hasEscapes {
            unescaped(key, in: bytes).withUnsafeBytes { hasher.combine(bytes: $0) }
        } else {
            hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[key.range])))
        }
        return hasher.finalize() & Int.max
    }

    private static func equal(_ first: Key, _ second: Key, in bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        if first.hasEscapes || second.hasEscapes {
            return unescaped(first, in: bytes) == unescaped(second, in: bytes)
        }
        guard first.range.count == second.range.count else { return false }
        guard let base = bytes.baseAddress, first.range.count > 0 else { return true }
        guard base[first.range.lowerBound] == base[second.range.lowerBound] else { return false }
        return UnsafeBufferPointer(start: base + first.range.lowerBound, count: first.range.count)
            .elementsEqual(UnsafeBufferPointer(start: base + second.range.lowerBound, count: first.range.count))
    }

    static func unescaped(_ key: Key, in bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        key.hasEscapes ? unescapedKey(at: key.range.lowerBound - 1, in: bytes) : Array(bytes[key.range])
    }

    /// The bytes between the quotes of the (already checked) string at `offset`.
    private static func rawRange(at offset: Int, in bytes: UnsafeBufferPointer<UInt8>) -> Range<Int> {
        var end = offset + 1
        while bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
        return (offset + 1)..<end
    }

    /// The UTF-8 text of the (already checked) string at `offset`, escapes resolved.
    static func unescapedKey(at offset: Int, in bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        let range = rawRange(at: offset, in: bytes)
        var text: [UInt8] = []
        text.reserveCapacity(range.count)
        var index = range.lowerBound
        var pendingHighSurrogate: UInt32?
        func append(scalar value: UInt32) {
            let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
            text.append(contentsOf: Array(String(Character(scalar)).utf8))
        }
        while index < range.upperBound {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                if let high = pendingHighSurrogate { append(scalar: high); pendingHighSurrogate = nil }
                text.append(byte)
                index += 1
                continue
            }
            let escape = bytes[index + 1]
            index += 2
            guard escape == UInt8(ascii: "u") else {
                if let high = pendingHighSurrogate { append(scalar: high); pendingHighSurrogate = nil }
                switch escape {
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                default: text.append(escape)
                }
                continue
            }
            var unit: UInt32 = 0
            for offset in 0..<4 { unit = unit << 4 | UInt32(hexValue(bytes[index + offset]) ?? 0) }
            index += 4
            if let high = pendingHighSurrogate {
                pendingHighSurrogate = nil
                if (0xDC00...0xDFFF).contains(unit) {
                    append(scalar: 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00))
                    continue
                }
                append(scalar: high)
            }
            if (0xD800...0xDBFF).contains(unit) {
                pendingHighSurrogate = unit
            } else {
                append(scalar: unit)
            }
        }
        if let high = pendingHighSurrogate { append(scalar: high) }
        return text
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
