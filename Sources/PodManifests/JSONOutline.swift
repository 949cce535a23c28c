/// The outline of one JSON text, from a single pass over its bytes: the
/// top-level object's members and, when one of them is an array named
/// `items`, the byte range of each element, so a big PodList is decoded one
/// item at a time instead of as a whole.
///
/// The pass checks the syntax (RFC 8259) and refuses an object that has the
/// same key twice: Kubernetes never writes one, and tools disagree on which
/// copy wins, so a decoder that silently takes one must never see it. Its
/// memory is the container stack and the keys of the objects still open.
/// The bytes must already be valid UTF-8 (`UTF8Check`).
struct JSONOutline {
    struct Member {
        var key: String
        var value: Range<Int>
    }

    /// The top-level value (whitespace and a byte order mark excluded).
    var root: Range<Int>
    /// The top-level object's members named in `knownMembers`, in document
    /// order; empty for any other value.
    var members: [Member] = []

    /// The top-level members of a Pod, a list or a watch event that readers look at.
    static let knownMembers: Set<String> = ["kind", "metadata", "items", "type", "object"]
    static let longestKnownMember = 12
    /// The elements of the top-level `items` member when it is an array.
    var items: [Range<Int>]?

    func member(_ key: String) -> Member? { members.first { $0.key == key } }

    /// Deeper nesting is refused (JSONDecoder's own limit is 512 too).
    static let maximumDepth = 512

    enum SyntaxError: Error {
        /// Not JSON at all: the text may still be YAML (flow style).
        case syntax(String, offset: Int)
        /// JSON, but not acceptable as a manifest.
        case refused(String, offset: Int)
    }

    static func scan(_ bytes: UnsafeRawBufferPointer) throws(SyntaxError) -> JSONOutline {
        var scanner = Scanner(bytes: bytes.bindMemory(to: UInt8.self))
        return try scanner.run()
    }
}

private struct Scanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    /// One open object or array.
    struct Frame {
        var isObject: Bool
        var start: Int
        /// This array is the top-level object's `items`.
        var isItems = false
    }

    var frames: [Frame] = []
    /// Keys of each open object, by depth, reused from one object to the next.
    var keyTables: [KeyTable] = []

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    private enum Expect { case value, valueOrClose, key, keyOrClose, colon, commaOrClose }

    mutating func run() throws(JSONOutline.SyntaxError) -> JSONOutline {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        skipWhitespace()
        var outline = JSONOutline(root: index..<index)
        var expect = Expect.value
        var memberKey: String?
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw syntax("Unexpected end of file") }
            let byte = bytes[index]
            var valueStart = index
            switch expect {
            case .colon:
                guard byte == UInt8(ascii: ":") else { throw syntax("Expected ':' after an object key") }
                index += 1
                expect = .value
                continue
            case .key, .keyOrClose:
                if byte == UInt8(ascii: "}"), expect == .keyOrClose {
                    valueStart = closeContainer()
                    break
                }
                guard byte == UInt8(ascii: "\"") else { throw syntax("Expected a key (a string) in an object") }
                let keyStart = index
                let hasEscapes = try skipString()
                let key = KeyTable.Key(range: (keyStart + 1)..<(index - 1), hasEscapes: hasEscapes)
                let depth = frames.count - 1
                if keyTables[depth].insert(key, in: bytes) != nil {
                    let text = String(decoding: KeyTable.unescaped(key, in: bytes), as: UTF8.self)
                    throw .refused("duplicate key \(MessageText.quoted(text))", offset: keyStart)
                }
                if depth == 0 {
                    // Only the members a reader asks for are kept: a document
                    // of a million top-level keys must not cost a million strings.
                    let text = key.range.count <= JSONOutline.longestKnownMember
                        ? String(decoding: KeyTable.unescaped(key, in: bytes), as: UTF8.self) : ""
                    memberKey = JSONOutline.knownMembers.contains(text) ? text : nil
                }
                expect = .colon
                continue
            case .commaOrClose:
                let frame = frames[frames.count - 1]
                if byte == UInt8(ascii: ",") {
                    index += 1
                    expect = frame.isObject ? .key : .value
                    continue
                }
                guard byte == UInt8(ascii: frame.isObject ? "}" : "]") else {
                    throw syntax(frame.isObject ? "Expected ',' or '}' after an object member" : "Expected ',' or ']' after an array element")
                }
                valueStart = closeContainer()
            case .value, .valueOrClose:
                if byte == UInt8(ascii: "]"), expect == .valueOrClose {
                    valueStart = closeContainer()
                    break
                }
                switch byte {
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    guard frames.count < JSONOutline.maximumDepth else {
                        throw .refused("nested deeper than \(JSONOutline.maximumDepth) levels", offset: index)
                    }
                    let isObject = byte == UInt8(ascii: "{")
                    let isItems = !isObject && frames.count == 1 && memberKey == "items"
                    frames.append(Frame(isObject: isObject, start: index, isItems: isItems))
                    if isItems { outline.items = [] }
                    if isObject {
                        while keyTables.count < frames.count { keyTables.append(KeyTable()) }
                        keyTables[frames.count - 1].reset()
                    }
                    index += 1
                    expect = isObject ? .keyOrClose : .valueOrClose
                    continue
                case UInt8(ascii: "\""): _ = try skipString()
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try skipNumber()
                case UInt8(ascii: "t"): try skipLiteral("true")
                case UInt8(ascii: "f"): try skipLiteral("false")
                case UInt8(ascii: "n"): try skipLiteral("null")
                default: throw syntax("Unexpected \(MessageText.describe(byte: byte))")
                }
            }
            // A value ended at `index`; it started at `valueStart`.
            let range = valueStart..<index
            if frames.isEmpty {
                outline.root = range
                skipWhitespace()
                guard index == bytes.count else { throw syntax("Unexpected \(MessageText.describe(byte: bytes[index])) after the document") }
                return outline
            }
            if frames.count == 1, frames[0].isObject, let key = memberKey {
                outline.members.append(JSONOutline.Member(key: key, value: range))
                memberKey = nil
            } else if frames.count == 2, frames[1].isItems {
                outline.items?.append(range)
            }
            expect = .commaOrClose
        }
    }

    /// Closes the innermost container at `index`; returns where it started.
    private mutating func closeContainer() -> Int {
        index += 1
        return frames.removeLast().start
    }

    private func syntax(_ message: String) -> JSONOutline.SyntaxError {
        .syntax(message, offset: index)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    /// Skips the string at `index` (on its opening quote); true when it has escapes.
    private mutating func skipString() throws(JSONOutline.SyntaxError) -> Bool {
        var hasEscapes = false
        index += 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return hasEscapes
            }
            if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                guard index + 1 < bytes.count else { break }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    guard index + 5 < bytes.count else { index = bytes.count; break }
                    for offset in 2...5 where KeyTable.hexValue(bytes[index + offset]) == nil {
                        index += offset
                        throw syntax("Invalid \\u escape in a string")
                    }
                    index += 6
                default:
                    index += 1
                    throw syntax("Invalid escape sequence in a string")
                }
                continue
            }
            if byte < 0x20 { throw syntax("Unescaped control character in a string") }
            index += 1
        }
        throw syntax("Unexpected end of file")
    }

    private mutating func skipDigits() -> Int {
        let start = index
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
        return index - start
    }

    private mutating func skipNumber() throws(JSONOutline.SyntaxError) {
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw syntax("Unexpected end of file") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if skipDigits() == 0 {
            throw syntax("Invalid number")
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard skipDigits() > 0 else { throw syntax("Invalid number: no digit after the decimal point") }
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard skipDigits() > 0 else { throw syntax("Invalid number: no digit in the exponent") }
        }
    }

    private mutating func skipLiteral(_ literal: StaticString) throws(JSONOutline.SyntaxError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw syntax("Unexpected end of file") }
        for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] {
            index += offset
            throw syntax("Unexpected \(MessageText.describe(byte: bytes[index]))")
        }
        index += count
    }
}
