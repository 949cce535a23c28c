/// One function per fuzzed parser, taking raw bytes as an attacker would
/// write them (design §5.9, issue 12). Shared by the libFuzzer executables
/// under Fuzz/ and by the corpus replay test, so a harness is written once and
/// survives changes inside the parsers: each calls only a parser's public
/// entry point.
///
/// A harness returns normally when the parser behaved (accepted or refused
/// the input cleanly) and throws `FuzzFinding` when it broke a contract that
/// does not trap by itself, such as a multi-line error message. Traps, hangs
/// and runaway memory are for libFuzzer (or the replay's time bound) to see.
public enum FuzzTargets {
    public typealias Harness = @Sendable ([UInt8]) throws(FuzzFinding) -> Void

    /// Every harness by the name of its corpus directory and fuzz executable.
    public static let harnesses: [String: Harness] = [
        "manifest": manifest,
        "policy": policy,
        "config": config,
        "mountinfo": mountinfo,
        "http": http,
        "url": url,
    ]

    /// The names in a stable order.
    public static var names: [String] { harnesses.keys.sorted() }
}

/// A broken contract found by a harness; the fuzz executables trap on it.
public struct FuzzFinding: Error, CustomStringConvertible {
    public var harness: String
    public var problem: String

    public init(_ harness: String, _ problem: String) {
        self.harness = harness
        self.problem = problem
    }

    public var description: String { "\(harness): \(problem)" }
}

/// The contract for messages built from user data (issue 12, "Messages"):
/// one line, no terminal escapes, a short excerpt of the value at most.
enum MessageContract {
    /// Generous: the longest legitimate message (a list of known keys) is a few hundred bytes.
    static let maximumBytes = 1024

    static func check(_ message: String, harness: String) throws(FuzzFinding) {
        if let bad = message.unicodeScalars.first(where: { $0 == "\n" || $0 == "\r" || $0 == "\u{1B}" || $0 == "\0" }) {
            throw FuzzFinding(harness, "error message holds U+\(String(bad.value, radix: 16, uppercase: true)): \(excerpt(message))")
        }
        if message.utf8.count > maximumBytes {
            throw FuzzFinding(harness, "error message of \(message.utf8.count) bytes (over \(maximumBytes)): \(excerpt(message))")
        }
    }

    /// A finding's own excerpt, escaped, so the finding stays one line.
    static func excerpt(_ text: String) -> String {
        String(text.unicodeScalars.prefix(200).map { $0.escaped(asASCII: true) }.joined())
    }
}
