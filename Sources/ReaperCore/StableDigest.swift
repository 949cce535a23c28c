/// A digest that is the same in every process and on every machine (Swift's
/// `Hasher` is seeded per process), for fingerprints stored across runs.
/// FNV-1a, 64 bits: it names contents, it guards against no adversary.
public enum StableDigest {
    public static func hex(of parts: some Sequence<String>) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for part in parts {
            for byte in part.utf8 {
                hash ^= UInt64(byte)
                hash &*= 0x0000_0100_0000_01b3
            }
            // A separator no UTF-8 text holds, so ["ab", "c"] != ["a", "bc"].
            hash ^= 0xff
            hash &*= 0x0000_0100_0000_01b3
        }
        let text = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
