/// Which known name a user most likely meant, for "did you mean" hints on
/// keys and enumerated values in every file the agent reads.
public enum NearMiss {
    /// The candidate closest to `word`, when close enough to be a typo (case,
    /// `_`/`-`, a letter or two).
    public static func nearest(_ word: String, in candidates: [String]) -> String? {
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
    public static func normalize(_ text: String) -> String {
        String(text.lowercased().filter { !"_-. ".contains($0) })
    }

    /// Levenshtein distance, with a transposition counted as one edit.
    public static func editDistance(_ lhs: String, _ rhs: String) -> Int {
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
