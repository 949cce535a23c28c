/// One directory entry's name as the kernel gave it: raw bytes, not text.
///
/// Linux names are any bytes but `/` and NUL; decoding them as UTF-8 would
/// turn an invalid name into another name (U+FFFD), and every call made with
/// it would then miss the file. Names stay bytes from `getdents64` to
/// `statx`, `openat` and `unlinkat`; only reports decode them.
public struct FileName: Sendable, Hashable, Comparable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The bytes with a terminating NUL, so calls take them without a copy.
    private let terminated: [UInt8]

    /// `bytes` must hold no NUL (a kernel name never does).
    public init(bytes: some Sequence<UInt8>) {
        var storage = Array(bytes)
        storage.append(0)
        terminated = storage
    }

    public init(_ string: String) { self.init(bytes: string.utf8) }

    public init(stringLiteral value: String) { self.init(value) }

    /// Copies `length` bytes from a kernel record.
    init(copying pointer: UnsafeRawPointer, length: Int) {
        terminated = [UInt8](unsafeUninitializedCapacity: length + 1) { buffer, initialized in
            buffer.baseAddress!.initialize(from: pointer.assumingMemoryBound(to: UInt8.self), count: length)
            buffer[length] = 0
            initialized = length + 1
        }
    }

    /// The bytes, without the NUL.
    public var bytes: ArraySlice<UInt8> { terminated[..<(terminated.count - 1)] }

    /// The name as text when it is valid UTF-8; nil otherwise.
    public var string: String? {
        String(validating: bytes, as: UTF8.self)
    }

    /// For reports and logs: valid UTF-8 as is, any other byte as `\xNN`.
    public var description: String {
        if let string { return string }
        var text = ""
        var rest = bytes[...]
        while !rest.isEmpty {
            // The longest valid prefix goes as text, then one byte escaped.
            var length = rest.count
            while length > 0, String(validating: rest.prefix(length), as: UTF8.self) == nil { length -= 1 }
            if length > 0 {
                text += String(decoding: rest.prefix(length), as: UTF8.self)
                rest = rest.dropFirst(length)
            } else {
                let byte = rest.removeFirst()
                text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        return text
    }

    public var isDotOrDotDot: Bool {
        terminated == [0x2E, 0] || terminated == [0x2E, 0x2E, 0]
    }

    /// Calls `body` with the NUL-terminated name.
    public func withCString<Result, Failure: Error>(
        _ body: (UnsafePointer<CChar>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let outcome: Swift.Result<Result, Failure> = terminated.withUnsafeBytes { raw in
            let pointer = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            do throws(Failure) { return .success(try body(pointer)) } catch { return .failure(error) }
        }
        return try outcome.get()
    }

    public static func < (lhs: FileName, rhs: FileName) -> Bool {
        lhs.terminated.lexicographicallyPrecedes(rhs.terminated)
    }

    /// `name == "mount"` without building a FileName.
    public static func == (lhs: FileName, rhs: String) -> Bool {
        lhs.bytes.elementsEqual(rhs.utf8)
    }
}
