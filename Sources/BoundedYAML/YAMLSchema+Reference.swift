/// The reference tables README shows, made from the same tables the readers
/// use: a key the reader knows cannot be missing from them.
extension YAMLSchema {
    /// A Markdown table of the section at `path`, one row per key with a
    /// summary, named relative to `path`; the keys of the sections in `expanding` (all sections under
    /// the top level when nil) follow their section's key as `section.key`.
    public func referenceTable(_ path: String = "", header: String = "key", expanding: [String]? = nil) -> String {
        var rows = ["| \(header) | default | |", "|---|---|---|"]
        func row(_ name: String, _ key: YAMLKey) {
            guard !key.summary.isEmpty else { return }
            rows.append("| `\(name)` | \(key.defaultText.isEmpty ? "" : key.defaultText + " ")| \(key.summary) |")
        }
        for key in self[path].keys {
            row(key.name, key)
            let field = YAMLSection.field(key.name, under: path)
            let inline = expanding.map { $0.contains(field) } ?? path.isEmpty
            guard inline, let section = sections.first(where: { $0.path == field }) else { continue }
            for sub in section.keys { row("\(key.name).\(sub.name)", sub) }
        }
        return rows.joined(separator: "\n")
    }
}
