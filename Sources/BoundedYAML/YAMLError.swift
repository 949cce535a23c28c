import ReaperCore

/// Why a YAML text was refused, in our words (never the library's), with
/// where: 1-based line and column.
public struct YAMLError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// Not YAML at all: the scanner or parser stopped.
        case syntax
        /// An alias (`*name`) used as a mapping key.
        case aliasAsKey
        /// A list or mapping used as a mapping key (`? [a, b]: c`).
        case complexKey
        /// The same key twice in one mapping (however quoted or tagged).
        case duplicateKey
        /// An alias to an anchor not (yet) defined.
        case undefinedAlias
        /// Collections nested deeper than `YAMLLimits.maxDepth`.
        case tooDeep
        /// More anchors than `YAMLLimits.maxAnchors`.
        case tooManyAnchors
        /// More aliases than `YAMLLimits.maxAliases`.
        case tooManyAliases
        /// More nodes, aliases expanded, than `YAMLLimits.maxNodes`.
        case tooManyNodes
    }

    public var code: Code
    /// What is wrong, one line; user text in it is escaped and excerpted.
    public var problem: String
    /// The key at fault for `duplicateKey`, excerpted.
    public var key: String?
    public var line: Int
    public var column: Int

    public init(_ code: Code, _ problem: String, key: String? = nil, line: Int, column: Int) {
        self.code = code
        self.problem = problem
        self.key = key.map { UserText.excerpt($0) }
        self.line = line
        self.column = column
    }

    /// `line 3, column 5: duplicate key "idle"...`
    public var description: String {
        "line \(line), column \(column): \(problem)"
    }
}
