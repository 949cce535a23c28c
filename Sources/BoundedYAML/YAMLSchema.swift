/// One key a section of a file may hold, with what the reference says of it.
public struct YAMLKey: Sendable, Hashable {
    public var name: String
    /// The default as the reference shows it (Markdown); empty when there is none to show.
    public var defaultText: String
    /// What it does, as the reference says it (Markdown); empty: no row of
    /// its own (a section whose keys have the rows, a key of another program's file).
    public var summary: String

    public init(_ name: String, default defaultText: String = "", _ summary: String = "") {
        self.name = name
        self.defaultText = defaultText
        self.summary = summary
    }
}

/// The keys one mapping of a file may hold: the one table its reader, its
/// "known:" lists, its "did you mean" hints and its reference are made from,
/// so that none of them can know a key the others do not.
public struct YAMLSection: Sendable, Hashable {
    public enum UnknownKeys: Sendable, Hashable {
        /// Our own files: any key not in the table is refused.
        case refused
        /// Another program's file (a kubeconfig, the kubelet's config), which
        /// holds keys we never read: only a near miss of a key we read is
        /// refused (it is almost surely a typo of it), the rest ignored.
        case nearMissesRefused
    }

    /// The section's path (`pressure`, `podSource`); "" for the file's top level.
    public var path: String
    /// What one key is called in messages: `key`, `setting`, `section`...
    public var noun: String
    public var keys: [YAMLKey]
    public var unknownKeys: UnknownKeys

    public init(_ path: String, noun: String = "key", unknownKeys: UnknownKeys = .refused, keys: [YAMLKey]) {
        self.path = path
        self.noun = noun
        self.keys = keys
        self.unknownKeys = unknownKeys
    }

    public var names: [String] { keys.map(\.name) }

    public func contains(_ key: String) -> Bool { keys.contains { $0.name == key } }

    /// `prefix.key`, or `key` at the top level.
    static func field(_ key: String, under prefix: String) -> String {
        prefix.isEmpty ? key : "\(prefix).\(key)"
    }
}

/// The sections of one kind of file.
public struct YAMLSchema: Sendable, Hashable {
    public var sections: [YAMLSection]

    public init(_ sections: [YAMLSection]) {
        self.sections = sections
    }

    /// The section at `path`; a path not in the schema is a programming error.
    public subscript(path: String) -> YAMLSection {
        guard let section = sections.first(where: { $0.path == path }) else {
            preconditionFailure("no section \(path) in the schema")
        }
        return section
    }

    /// Why `key`, found in `section` at the field path `prefix`, is refused
    /// (`unknown key in idle; did you mean idle.after?`), or nil when the
    /// section lets it pass: known, or far from every key of another
    /// program's file.
    public func unknownKeyProblem(_ key: String, in section: YAMLSection, at prefix: String) -> String? {
        guard !section.contains(key) else { return nil }
        let suggestion = self.suggestion(for: key, in: section, at: prefix)
        if section.unknownKeys == .nearMissesRefused, suggestion == nil { return nil }
        var problem = "unknown \(section.noun)" + (prefix.isEmpty ? "" : " in \(prefix)")
        if let suggestion {
            problem += "; did you mean \(suggestion)?"
        } else {
            problem += "; known: \(section.names.joined(separator: ", "))"
        }
        return problem
    }

    /// A hint for an unknown key: the closest key of the same mapping when it
    /// is a near miss, else (in our own files) the same key where it belongs
    /// in another section (`idle.idleAfter` -> `annotation.idleAfter`).
    public func suggestion(for key: String, in section: YAMLSection, at prefix: String) -> String? {
        if let near = NearMiss.nearest(key, in: section.names) {
            return YAMLSection.field(near, under: prefix)
        }
        guard section.unknownKeys == .refused else { return nil }
        let normalizedKey = NearMiss.normalize(key)
        let others = sections.filter { $0.path != section.path && !$0.path.isEmpty && $0.unknownKeys == .refused }
        for other in others {
            if section.path.isEmpty, let near = NearMiss.nearest(key, in: other.names) {
                return YAMLSection.field(near, under: other.path)
            }
            if let match = other.names.first(where: { NearMiss.normalize($0) == normalizedKey }) {
                return YAMLSection.field(match, under: other.path)
            }
        }
        if !section.path.isEmpty, let top = sections.first(where: { $0.path.isEmpty }), let near = NearMiss.nearest(key, in: top.names) {
            let isSection = sections.contains { $0.path == near }
            return isSection ? "the section \(near) (at the top level)" : "\(near) (at the top level)"
        }
        return nil
    }
}
