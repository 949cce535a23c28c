import Foundation

/// A credential's value: a bearer token, an `Authorization` header. However
/// it is printed (`description`, `debugDescription`, a mirror, string
/// interpolation, a log's metadata), it shows `<redacted>`, so an error, a
/// log line, the plan or `/healthz` built from one cannot show it. The value
/// leaves only through `revealed`, where the request header is made
/// (`ClusterCredentials.authorization()`), and `redact(in:)` scrubs it out
/// of text that came back from a library (an HTTP client's error).
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let value: String

    public init(_ value: String) { self.value = value }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [:]) }

    /// The value itself: only for the request header.
    var revealed: String { value }

    /// `text` with every occurrence of the value replaced by `<redacted>`.
    public func redact(in text: String) -> String {
        guard !value.isEmpty else { return text }
        return text.replacingOccurrences(of: value, with: "<redacted>")
    }

    /// A bearer token as RFC 6750 and the API server take it: visible ASCII
    /// only (`!` to `~`). Anything else is refused before a request is made:
    /// CR/LF would split the header, NUL, ESC or BEL would corrupt it or the
    /// terminal that shows it. The refusal names the character and where it
    /// is, never the value.
    static func bearerToken(_ text: String, refuse: (String) -> ClusterAccessError) throws(ClusterAccessError) -> Secret {
        for (offset, byte) in text.utf8.enumerated() where !(0x21...0x7E).contains(byte) {
            let what = byte < 0x20 || byte == 0x7F ? "a control character" : byte == 0x20 ? "a space" : "a non-ASCII byte"
            throw refuse(
                "the token holds \(what) (0x\(String(byte, radix: 16, uppercase: true)) at byte \(offset + 1) of \(text.utf8.count));"
                    + " a bearer token is visible ASCII only (the token is not shown)"
            )
        }
        return Secret(text)
    }
}
