import Foundation

/// Durations as policies and config files write them: `90s`, `30m`, `1h30m`,
/// `2d`, `500ms`. Each unit at most once, largest first (`1m1m` and `30s1m`
/// are refused: they are typos more often than intent).
public enum DurationText {
    /// Policy durations (`idle.after`, `annotation.idleAfter`, ...): one
    /// second to a year. Shorter is a typo (a volume idle for 5 ms is not
    /// idle); longer is no threshold at all, and would overflow the clock.
    public static let policyRange: ClosedRange<TimeInterval> = 1...(365 * 86400)

    /// The daemon's pacing (`reconcileInterval`, `flushInterval`,
    /// `pollInterval`): a tenth of a second to a day.
    public static let intervalRange: ClosedRange<TimeInterval> = 0.1...86400

    /// Units, largest first, with their length in seconds.
    static let units: [(name: String, seconds: TimeInterval)] = [
        ("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001),
    ]

    /// Parses a duration; nil when the text is not one (negative ones
    /// included, and any unit repeated or out of order).
    public static func parse(_ text: String) -> TimeInterval? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return nil }
        if trimmed == "0" { return 0 }
        var total: TimeInterval = 0
        var number = ""
        var unit = ""
        // Index into `units` below which the next unit must come.
        var nextUnit = 0
        func flush() -> Bool {
            guard !number.isEmpty, number.filter({ $0 == "." }).count <= 1, number != ".", let value = Double(number),
                  let index = units[nextUnit...].firstIndex(where: { $0.name == unit })
            else { return false }
            total += value * units[index].seconds
            nextUnit = index + 1
            number = ""
            unit = ""
            return true
        }
        for character in trimmed {
            if character.isASCII, character.isNumber || character == "." {
                if !unit.isEmpty, !flush() || nextUnit == units.count { return nil }
                number.append(character)
            } else if character.isASCII, character.isLetter {
                guard !number.isEmpty, unit.count < 2 else { return nil }
                unit.append(character)
            } else {
                return nil
            }
        }
        guard flush(), total.isFinite else { return nil }
        return total
    }

    /// Why `value` is outside `range`, in words naming both ends; nil when inside.
    public static func rangeProblem(_ value: TimeInterval, _ range: ClosedRange<TimeInterval>) -> String? {
        guard !value.isFinite || !range.contains(value) else { return nil }
        return "must be from \(format(range.lowerBound, exact: true)) to \(format(range.upperBound, exact: true))"
    }

    /// A short human form: `2h5m`, `45s`, `3d4h`; `exact` keeps every unit
    /// down to milliseconds (`100ms`, `1d2h3m`). Never traps, whatever the value.
    public static func format(_ interval: TimeInterval, exact: Bool = false) -> String {
        guard interval.isFinite else { return interval.isNaN ? "nan" : interval < 0 ? "-inf" : "inf" }
        if interval < 0 { return "-" + format(-interval, exact: exact) }
        // Beyond what an Int holds in milliseconds: days as a plain number.
        guard interval < 9e12 else { return String(format: "%.0fd", interval / 86400) }
        var milliseconds = Int((interval * 1000).rounded(.down))
        if exact {
            if milliseconds == 0 { return "0s" }
            var parts: [String] = []
            for (name, seconds) in units {
                let size = Int(seconds * 1000)
                let count = milliseconds / size
                milliseconds %= size
                if count > 0 { parts.append("\(count)\(name)") }
            }
            return parts.joined()
        }
        var seconds = milliseconds / 1000
        if seconds == 0 { return "0s" }
        let days = seconds / 86400; seconds %= 86400
        let hours = seconds / 3600; seconds %= 3600
        let minutes = seconds / 60; seconds %= 60
        var parts: [String] = []
        if days > 0 { parts.append("\(days)d") }
        if hours > 0 { parts.append("\(hours)h") }
        if minutes > 0, days == 0 { parts.append("\(minutes)m") }
        if seconds > 0, days == 0, hours == 0 { parts.append("\(seconds)s") }
        return parts.joined()
    }
}
