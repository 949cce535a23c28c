import ReaperCore

/// A credential problem, as one line naming the file and the field at fault:
/// `/etc/kubernetes/kubelet.conf: users[0].user.client-key: cannot read /x.pem: No such file or directory`.
///
/// Never holds a secret: messages are built from the names of files and
/// fields and from `UserText` excerpts of values that are not credentials; a
/// token is only ever a `Secret`, which prints as `<redacted>`.
public struct ClusterAccessError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kubeconfig, service-account file or plugin the problem is in.
    public var file: String
    /// The field at fault (`users[0].user.client-key`, `KUBERNETES_SERVICE_HOST`), when one is.
    public var field: String?
    /// What is wrong, one line.
    public var message: String

    /// A problem with `field` of `file`; `message` is kept to one line.
    public init(file: String, field: String?, _ message: String) {
        self.file = file
        self.field = field
        self.message = OneLine.text(message, limit: 1_000)
    }

    /// `file: field: message`.
    public var description: String {
        [file, field, message].compactMap { $0 }.joined(separator: ": ")
    }
}

/// Keeps a message that quotes values one line, without escaping it twice:
/// the values in it were escaped once where they were quoted
/// (`UserText.excerpt`), so only what is still a control character (from an
/// error's own description, a path) is escaped here, and backslashes stay.
enum OneLine {
    static func text(_ text: String, limit: Int) -> String {
        var result = ""
        var shown = 0
        var cut: String?
        for scalar in text.unicodeScalars {
            let piece = isPlain(scalar) ? String(scalar) : UserText.excerpt(String(scalar))
            if cut == nil, shown + piece.count > limit - 3 { cut = result + "..." }
            shown += piece.count
            if shown > limit { return cut ?? result + "..." }
            result += piece
        }
        return result
    }

    /// Not a control, line break or bidirectional override (what `UserText` escapes), or a backslash or quote.
    static func isPlain(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\\" || scalar == "\"" { return true }
        return UserText.excerpt(String(scalar)) == String(scalar)
    }
}
