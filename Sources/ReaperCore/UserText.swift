/// Text that came from a user (a policy value, a manifest field, a request
/// target) made safe to put into a one-line message: control characters and
/// escapes shown as `\n`, `\u{1b}`, and the whole cut to a short excerpt, so a
/// hostile value can neither split a log line, drive a terminal, nor flood stderr.
public enum UserText {
    /// How many characters of a user's value a message shows by default.
    public static let defaultLimit = 80

    /// `text` escaped, at most `limit` characters of it (escapes count as
    /// written), with `...` when cut. Reads no more of `text` than it shows,
    /// so a 100 MB value costs no more than a short one.
    public static func excerpt<Text: StringProtocol>(_ text: Text, limit: Int = defaultLimit, quoting: Bool = false) -> String {
        let limit = max(limit, 4)
        var pieces: [String] = []
        var shown = 0
        for scalar in text.unicodeScalars {
            let piece = escaped(scalar, quoting: quoting)
            pieces.append(piece)
            shown += piece.count
            guard shown > limit else { continue }
            var result = ""
            var kept = 0
            for piece in pieces {
                if kept + piece.count > limit - 3 { break }
                result += piece
                kept += piece.count
            }
            return result + "..."
        }
        return pieces.joined()
    }

    /// One scalar as it may appear in a message.
    static func escaped(_ scalar: Unicode.Scalar, quoting: Bool) -> String {
        switch scalar {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\t": return "\\t"
        case "\\": return "\\\\"
        case "\"" where quoting: return "\\\""
        default:
            // C0 and C1 controls, DEL, and the line/paragraph separators and
            // bidirectional overrides that reorder or break what a reader sees.
            let value = scalar.value
            if value < 0x20 || (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029
                || (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value) || value == 0xFEFF {
                return "\\u{" + String(value, radix: 16) + "}"
            }
            return String(scalar)
        }
    }
}
