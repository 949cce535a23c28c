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

    public struct BooleanError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What to write instead, when the value is a near miss; nil for anything else.
        public var hint: String?
        /// The one refusal every file shows (each adds the field and the value).
        public var description: String { hint ?? "must be true or false" }
    }
}
