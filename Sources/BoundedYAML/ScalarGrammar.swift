import Foundation
import ReaperCore
import Yams

/// One grammar for the typed scalars every file the agent reads (the policy,
/// the config and its sections) shares, so that a value means the same in
/// each. Each rule answers the value, or a one-line problem to show.
public enum ScalarGrammar {
    /// Only YAML's plain `true` and `false` (any case YAML allows): not
    /// `yes`/`no`/`on`/`off`, and not quoted text, which is a string.
    public static func boolean(_ scalar: Node.Scalar) -> Result<Bool, BooleanError> {
        let quoted = scalar.style == .singleQuoted || scalar.style == .doubleQuoted
        if !quoted {
            switch scalar.string {
            case "true", "True", "TRUE": return .success(true)
            case "false", "False", "FALSE": return .success(false)
            default: break
            }
        }
        if quoted { return .failure(BooleanError(hint: "write true or false without quotes")) }
        if ["yes", "no", "on", "off", "y", "n"].contains(scalar.string.lowercased()) {
            return .failure(BooleanError(hint: "write true or false (yes, no, on and off are not accepted)"))
        }
        return .failure(BooleanError(hint: nil))
    }

    /// A duration as every file writes it (`90s`, `30m`, `1h30m`, `2d`):
    /// never negative, never a bare number (seconds or minutes?), within
    /// `range`; `0` only where `zero` is allowed (it means "none" there).
    public static func duration(_ text: String, range: ClosedRange<TimeInterval>, zero: Bool) -> Result<TimeInterval, DurationError> {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("-") { return .failure(DurationError(.negative, "a duration cannot be negative")) }
        if text == "0" || text.isEmpty == false && DurationText.parse(text) == 0 {
            return zero ? .success(0) : .failure(DurationError(.notPositive, "must be a positive duration like 30s, 5m or 1h"))
        }
        if let first = text.first, first.isASCII, first.isNumber || first == "." || first == "+", Double(text) != nil {
            let shown = UserText.excerpt(text, limit: 20)
            return .failure(DurationError(
                .unitless, "a number without a unit is ambiguous; write it with one, e.g. \(shown)s or \(shown)m (units: ms, s, m, h, d)"
            ))
        }
        guard let value = DurationText.parse(text) else {
            return .failure(DurationError(.invalid, zero ? "not a duration; write e.g. 90s, 30m, 1h30m or 2d" : "must be a positive duration like 30s, 5m or 1h"))
        }
        if let problem = DurationText.rangeProblem(value, range) { return .failure(DurationError(.outOfRange, problem)) }
        return .success(value)
    }

    public struct DurationError: Error, Sendable, Hashable, CustomStringConvertible {
        public enum Kind: Sendable, Hashable {
            case negative, notPositive, unitless, invalid, outOfRange
        }

        public var kind: Kind
        /// The one refusal every file shows (each adds the field and the value).
        public var description: String

        init(_ kind: Kind, _ description: String) {
            self.kind = kind
            self.description = description
        }
    }

    public struct BooleanError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What to write instead, when the value is a near miss; nil for anything else.
        public var hint: String?
        /// The one refusal every file shows (each adds the field and the value).
        public var description: String { hint ?? "must be true or false" }
    }
}
