import ReaperCore

/// User data inside one-line error messages: escaped, and cut to a short excerpt.
enum MessageText {
    static let excerptLength = 64

    /// `text` in double quotes, escaped and cut as `UserText.excerpt` does
    /// (after `excerptLength` characters, with "...").
    static func quoted(_ text: String) -> String {
        "\"" + UserText.excerpt(text, limit: excerptLength, quoting: true) + "\""
    }

    /// A name such as an annotation key: as it is when made of the characters
    /// Kubernetes allows in one (and short), else `quoted`.
    static func name(_ text: String) -> String {
        let plain = !text.isEmpty && text.utf8.count <= excerptLength && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "-"), UInt8(ascii: "/"):
                return true
            default:
                return false
            }
        }
        return plain ? text : quoted(text)
    }

    /// One byte of a document, for a syntax error: "character 'x'" or "byte 0x1B".
    static func describe(byte: UInt8) -> String {
        if byte > 0x20, byte < 0x7F { return "character '\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16, uppercase: true)
    }
}
