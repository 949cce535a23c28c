import Yams

/// One key of a mapping with its value and its field path (`pressure.checkInterval`).
public struct FieldEntry {
    public var key: String
    public var keyNode: Node
    public var value: Node
    public var field: String
}

/// Why a mapping was refused before any value was read: the file's reader
/// puts it in its own error type, with the file's name.
public struct FieldError: Error {
    public enum Code: Sendable, Hashable {
        /// A key the section's table does not hold.
        case unknownKey
        /// The section is a list or a scalar.
        case notAMapping
        /// A key that is not a plain scalar.
        case keyNotText
    }

    public var code: Code
    /// The field path at fault: the key's for `unknownKey`, the section's otherwise.
    public var field: String
    /// The node at fault as written (the key for `unknownKey`), flattened to one line.
    public var value: String
    public var problem: String
    /// Where the node at fault is, 1-based.
    public var line: Int?
    public var column: Int?

    init(code: Code, field: String, node: Node, problem: String) {
        self.code = code
        self.field = field
        self.value = YAMLValue.render(node)
        self.problem = problem
        self.line = node.mark?.line
        self.column = node.mark?.column
    }
}

extension YAMLSchema {
    /// The pairs of `node` read as the section at `path`, each named
    /// `<prefix>.<key>` (`prefix` is the section's path unless given: a
    /// kubeconfig's `users[0].user`). Keys the section does not know are
    /// refused as its `unknownKeys` says; a section written with no value
    /// (every key commented out) is empty.
    public func entries(of node: Node, section path: String, at prefix: String? = nil) throws(FieldError) -> [FieldEntry] {
        let section = self[path]
        let prefix = prefix ?? path
        switch node {
        case let .mapping(mapping):
            var entries: [FieldEntry] = []
            for (keyNode, value) in mapping {
                guard case let .scalar(key) = keyNode else {
                    throw FieldError(
                        code: .keyNotText, field: prefix.isEmpty ? "(top level)" : prefix, node: keyNode,
                        problem: "keys are plain names, not \(YAMLValue.kind(of: keyNode))"
                    )
                }
                if let problem = unknownKeyProblem(key.string, in: section, at: prefix) {
                    throw FieldError(code: .unknownKey, field: YAMLSection.field(key.string, under: prefix), node: keyNode, problem: problem)
                }
                entries.append(FieldEntry(key: key.string, keyNode: keyNode, value: value, field: YAMLSection.field(key.string, under: prefix)))
            }
            return entries
        case .scalar where !prefix.isEmpty && YAMLValue.isNull(node):
            return []
        default:
            throw FieldError(
                code: .notAMapping, field: prefix.isEmpty ? "(top level)" : prefix, node: node,
                problem: "expected a mapping of \(section.names.joined(separator: ", ")), not \(YAMLValue.kind(of: node))"
            )
        }
    }
}
