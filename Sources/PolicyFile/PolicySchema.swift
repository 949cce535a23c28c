/// The keys a policy file may hold, in the order the shipped files use.
enum PolicySchema {
    static let sections: [(name: String, keys: [String])] = [
        ("idle", ["after", "timestamps", "requireObservation", "maxUnobservedGap"]),
        ("annotation", ["key", "idleAfter", "required"]),
        ("pods", ["phases", "excludeOwnerKinds", "excludeNamespaces", "protectAnnotation"]),
        ("orphans", ["reap", "manifestsMaxAge", "confirmAfter", "removePodDir"]),
        ("volumes", ["recursive", "exclude", "unmount"]),
        ("limits", ["maxReapsPerCycle", "maxOrphanFraction", "maxPodsLost"]),
        ("pressure", ["available", "inodesAvailable", "margin", "hysteresis", "idleAfter", "maxReapsPerCycle", "checkInterval"]),
    ]

    static var sectionNames: [String] { sections.map(\.name) }

    static func keys(of section: String) -> [String] {
        sections.first { $0.name == section }?.keys ?? []
    }

    /// A hint for an unknown key: the closest known key of the same mapping when
    /// it is a near miss (case, `_`/`-`, a typo or two), else the same key where
    /// it belongs in another section (`idle.idleAfter` -> `annotation.idleAfter`).
    static func suggestion(for key: String, section: String?) -> String? {
        let known = section.map(keys(of:)) ?? sectionNames
        if let near = nearest(key, in: known) {
            return section.map { "\($0).\(near)" } ?? near
        }
        let normalizedKey = normalize(key)
        for (name, keys) in sections {
            if section == nil, let near = nearest(key, in: keys) { return "\(name).\(near)" }
            if name != section, let match = keys.first(where: { normalize($0) == normalizedKey }) {
                return "\(name).\(match)"
            }
        }
        if section != nil, let near = nearest(key, in: sectionNames) {
            return "the section \(near) (at the top level)"
        }
        return nil
    }

    /// The candidate closest to `word`, when close enough to be a typo.
    static func nearest(_ word: String, in candidates: [String]) -> String? {
        let normalized = normalize(word)
        guard !normalized.isEmpty else { return nil }
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(normalized, normalize(candidate))
            if distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        guard let best else { return nil }
        let allowed = normalized.count <= 4 ? 1 : (normalized.count <= 10 ? 2 : 3)
        return best.distance <= allowed ? best.candidate : nil
    }

    /// Lowercased, without `_`, `-`, `.` and spaces: `max_reaps_per_cycle` ~ `maxReapsPerCycle`.
    static func normalize(_ text: String) -> String {
        String(text.lowercased().filter { !"_-. ".contains($0) })
    }

    /// Levenshtein distance, with a transposition counted as one edit.
    static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let a = Array(lhs), b = Array(rhs)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previousPrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previousPrevious[j - 2] + 1)
                }
            }
            (previousPrevious, previous, current) = (previous, current, previousPrevious)
        }
        return previous[b.count]
    }
}
