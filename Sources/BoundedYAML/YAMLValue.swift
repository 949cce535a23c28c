import ReaperCore
import Yams

/// What a node is and how it was written, for readers and their messages.
public enum YAMLValue {
    /// The resolved tag (`Tag.name` is not public in Yams).
    public static func tagName(of node: Node) -> Tag.Name {
        Tag.Name(rawValue: node.tag.rawValue)
    }

    /// YAML null: `~`, `null` or nothing, unquoted.
    public static func isNull(_ node: Node) -> Bool {
        guard case .scalar = node else { return false }
        return tagName(of: node) == .null
    }

    /// What kind of YAML value this is, for messages.
    public static func kind(of node: Node) -> String {
        switch node {
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        case let .scalar(scalar):
            if scalar.style == .singleQuoted || scalar.style == .doubleQuoted { return "quoted text" }
            switch tagName(of: node) {
            case .null: return "null"
            case .bool: return "a boolean"
            case .int, .float: return "a number"
            case .timestamp: return "a timestamp"
            default: return "text"
            }
        }
    }

    /// The value as written, flattened to one line: `[mtime, ctime]`, `{a: b}`.
    /// Stops after `limit` characters: a value that aliases expand to a large
    /// structure costs no more to show than a short one.
    public static func render(_ node: Node, limit: Int = 2 * UserText.defaultLimit) -> String {
        var text = ""
        var length = 0
        func append(_ piece: String) -> Bool {
            text += piece
            length += piece.unicodeScalars.count
            return length <= limit
        }
        func walk(_ node: Node) -> Bool {
            switch node {
            case let .scalar(scalar):
                // At most the rest of the room (plus one, so the excerpt knows it was cut).
                return append(String(String.UnicodeScalarView(scalar.string.unicodeScalars.prefix(limit - length + 1))))
            case let .alias(alias):
                return append("*\(alias.anchor.rawValue)")
            case let .sequence(sequence):
                guard append("[") else { return false }
                for (index, item) in sequence.enumerated() {
                    guard index == 0 || append(", "), walk(item) else { return false }
                }
                return append("]")
            case let .mapping(mapping):
                guard append("{") else { return false }
                for (index, pair) in mapping.enumerated() {
                    guard index == 0 || append(", "), walk(pair.key), append(": "), walk(pair.value) else { return false }
                }
                return append("}")
            }
        }
        _ = walk(node)
        return text
    }
}
