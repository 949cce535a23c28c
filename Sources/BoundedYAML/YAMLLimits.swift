/// How much structure a YAML text may have before it is refused. Checked on
/// libyaml's event stream before any node is composed, so a hostile document
/// costs at most its own size in time and memory.
public struct YAMLLimits: Sendable, Hashable {
    /// Collections nested deeper than this are refused.
    public var maxDepth: Int
    /// Anchors (`&name`) in the whole text.
    public var maxAnchors: Int
    /// Aliases (`*name`) in the whole text.
    public var maxAliases: Int
    /// Nodes in the whole text with every alias expanded (an alias counts as
    /// many nodes as the structure it names): the "billion laughs" budget.
    public var maxNodes: Int

    public init(maxDepth: Int, maxAnchors: Int, maxAliases: Int, maxNodes: Int) {
        self.maxDepth = maxDepth
        self.maxAnchors = maxAnchors
        self.maxAliases = maxAliases
        self.maxNodes = maxNodes
    }

    /// Policy and config files: small hand-written documents.
    public static let settings = YAMLLimits(maxDepth: 32, maxAnchors: 100, maxAliases: 1_000, maxNodes: 100_000)

    /// Pod manifests in YAML: whole pod specs nest deeper and a node's list
    /// of pods holds millions of nodes, but no writer of them uses aliases.
    public static let manifests = YAMLLimits(maxDepth: 64, maxAnchors: 1_000, maxAliases: 10_000, maxNodes: 4_000_000)
}
