import BoundedYAML
import ReaperCore
import Yams

/// Typed access to a kubeconfig's YAML, every refusal naming the file and the
/// field path. Fields it is not asked for are never looked at, so a
/// kubeconfig with fields this agent does not use still loads, as in kubectl;
/// only a near miss of a field kubectl knows is refused (`certificate-authorty`
/// would otherwise silently mean "no CA").
struct KubeconfigFields {
    /// The kubeconfig's path, for messages.
    let file: String

    func error(_ field: String?, _ message: String) -> ClusterAccessError {
        ClusterAccessError(file: file, field: field, message)
    }

    /// The entries of a mapping, read as the kubeconfig section `section`
    /// (`KubeconfigSchema`); null reads as empty, as Go's decoder does.
    func mapping(_ node: Node?, field: String, section: String) throws(ClusterAccessError) -> KubeconfigMapping {
        var entries = KubeconfigMapping(section: KubeconfigSchema.schema[section])
        guard let node, !Self.isNull(node) else { return entries }
        guard case .mapping = node else {
            throw error(field, "expected a mapping, found \(Self.kind(of: node))")
        }
        do {
            for entry in try KubeconfigSchema.schema.entries(of: node, section: section, at: section.isEmpty ? "" : field) {
                entries.values[entry.key] = entry.value
            }
        } catch {
            throw self.error(error.code == .unknownKey ? error.field : field, error.problem)
        }
        return entries
    }

    /// The items of a list; absent or null reads as empty.
    func sequence(_ node: Node?, field: String) throws(ClusterAccessError) -> [Node] {
        guard let node, !Self.isNull(node) else { return [] }
        guard case let .sequence(sequence) = node else {
            throw error(field, "expected a list, found \(Self.kind(of: node))")
        }
        return Array(sequence)
    }

    /// A text field; absent, null or empty reads as nil. Plain numbers are
    /// text too (kubectl reads `token: 12345` as the string "12345").
    func string(_ node: Node?, field: String) throws(ClusterAccessError) -> String? {
        guard let node, !Self.isNull(node) else { return nil }
        guard case let .scalar(scalar) = node else {
            throw error(field, "expected text, found \(Self.kind(of: node))")
        }
        return scalar.string.isEmpty ? nil : scalar.string
    }

    /// A boolean field; absent or null reads as false.
    func bool(_ node: Node?, field: String) throws(ClusterAccessError) -> Bool {
        guard let node, !Self.isNull(node) else { return false }
        guard case let .scalar(scalar) = node, scalar.style == .plain, let value = node.bool else {
            throw error(field, "expected true or false, found \(Self.kind(of: node)) \(Self.excerpt(node))")
        }
        return value
    }

    /// A list of text (`args`).
    func strings(_ node: Node?, field: String) throws(ClusterAccessError) -> [String] {
        var result: [String] = []
        for (index, item) in try sequence(node, field: field).enumerated() {
            guard case let .scalar(scalar) = item, !Self.isNull(item) else {
                throw error("\(field)[\(index)]", "expected text, found \(Self.kind(of: item))")
            }
            result.append(scalar.string)
        }
        return result
    }

    static func isNull(_ node: Node) -> Bool {
        guard case .scalar = node else { return false }
        return Tag.Name(rawValue: node.tag.rawValue) == .null
    }

    /// What kind of YAML value this is, for messages.
    static func kind(of node: Node) -> String {
        switch node {
        case .sequence: return "a list"
        case .mapping: return "a mapping"
        case .alias: return "an alias"
        case .scalar:
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return "null"
            case .bool: return "a boolean"
            case .int, .float: return "a number"
            default: return "text"
            }
        }
    }

    static func excerpt(_ node: Node) -> String {
        guard case let .scalar(scalar) = node else { return "" }
        return "\"\(UserText.excerpt(scalar.string, limit: 40, quoting: true))\""
    }
}
