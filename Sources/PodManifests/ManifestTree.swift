import Foundation
import Yams

/// One value of a parsed manifest document, from either parser, read lazily:
/// only the fields the agent uses are ever looked at, so a kubelet `/pods`
/// output with full pod specs costs no more than the parse itself.
enum ManifestTree {
    /// A value from `JSONSerialization` (`[String: Any]`, `[Any]`, `String`,
    /// `NSNumber`, `NSNull`).
    case json(Any)
    /// A node from Yams' composer (aliases already resolved).
    case yaml(Node)

    /// A mapping's entries, keys as text; nil when this is not a mapping.
    var entries: [(key: String, value: ManifestTree)]? {
        switch self {
        case .json(let value):
            guard let object = value as? [String: Any] else { return nil }
            return object.map { (key: $0.key, value: .json($0.value)) }
        case .yaml(let node):
            guard case .mapping(let mapping) = node else { return nil }
            return mapping.map { (key: $0.key.scalar?.string ?? "", value: .yaml($0.value)) }
        }
    }

    /// Whether this is a mapping (without building its entries).
    var isMapping: Bool {
        switch self {
        case .json(let value): return value is [String: Any]
        case .yaml(let node):
            if case .mapping = node { return true }
            return false
        }
    }

    /// The value under `key` when this is a mapping that has it.
    subscript(key: String) -> ManifestTree? {
        switch self {
        case .json(let value):
            guard let object = value as? [String: Any], let child = object[key] else { return nil }
            return .json(child)
        case .yaml(let node):
            guard case .mapping(let mapping) = node else { return nil }
            // Compare the keys' text: Yams' own subscript resolves tags with
            // regular expressions on every comparison. Duplicate keys are a
            // parse error, so the first match is the only one.
            for (name, value) in mapping where name.scalar?.string == key {
                return .yaml(value)
            }
            return nil
        }
    }

    /// A sequence's elements; nil when this is not a sequence.
    var elements: [ManifestTree]? {
        switch self {
        case .json(let value):
            guard let array = value as? [Any] else { return nil }
            return array.map { .json($0) }
        case .yaml(let node):
            guard case .sequence(let sequence) = node else { return nil }
            return sequence.map { .yaml($0) }
        }
    }

    /// JSON `null`, or a YAML plain `null`, `~` or empty scalar.
    var isNull: Bool {
        switch self {
        case .json(let value):
            return value is NSNull
        case .yaml(let node):
            guard case .scalar(let scalar) = node else { return false }
            return scalar.style == .plain && node.tag.description == Tag.Name.null.rawValue
        }
    }

    /// A scalar's text as written: a JSON string, a JSON number or boolean
    /// as JSON spells it, any YAML scalar by its original text (never the
    /// value YAML would resolve it to: `2026-11-29T07:00:00Z`, `true` and
    /// `0123` stay what they say). Nil for null, mappings and sequences.
    var text: String? {
        guard !isNull else { return nil }
        switch self {
        case .json(let value):
            if let string = value as? String { return string }
            if let number = value as? NSNumber {
                if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
                return number.stringValue
            }
            return nil
        case .yaml(let node):
            return node.scalar?.string
        }
    }

    /// Whether this is a string in the strict sense: a JSON string, or any
    /// YAML scalar but null (YAML has no separate string syntax; Kubernetes'
    /// YAML decoder keeps a scalar's text when the field is a string).
    var isString: Bool {
        switch self {
        case .json(let value): return value is String
        case .yaml(let node): return node.scalar != nil && !isNull
        }
    }

    /// What this is, for error messages: "a mapping", "a list", "a number"...
    var kindDescription: String {
        if isNull { return "null" }
        switch self {
        case .json(let value):
            switch value {
            case is String: return "a string"
            case is [String: Any]: return "a mapping"
            case is [Any]: return "a list"
            case let number as NSNumber:
                return String(cString: number.objCType) == "c" ? "a boolean" : "a number"
            default: return "an unknown value"
            }
        case .yaml(let node):
            switch node {
            case .scalar: return "a scalar"
            case .mapping: return "a mapping"
            case .sequence: return "a list"
            case .alias: return "an alias"
            }
        }
    }

    /// The 1-based line where this value starts, for YAML.
    var line: Int? {
        switch self {
        case .json: return nil
        case .yaml(let node): return node.mark?.line
        }
    }
}
