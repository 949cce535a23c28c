import Foundation

/// Durations as policies write them: `90s`, `30m`, `1h30m`, `2d`, `500ms`.
public enum DurationText {
    /// Parses a duration; nil when the text is not one (negative ones included).
    public static func parse(_ text: String) -> TimeInterval? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return nil }
        if trimmed == "0" { return 0 }
        var total: TimeInterval = 0
        var number = ""
        var unit = ""
        var sawComponent = false
        func flush() -> Bool {
            guard let value = Double(number), !number.isEmpty else { return false }
            let scale: TimeInterval
            switch unit {
            case "ms": scale = 0.001
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            case "d": scale = 86400
            default: return false
            }
            total += value * scale
            number = ""
            unit = ""
            sawComponent = true
            return true
        }
        for character in trimmed {
            if character.isASCII, character.isNumber || character == "." {
                if !unit.isEmpty, !flush() { return nil }
                number.append(character)
            } else if character.isASCII, character.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(character)
            } else {
                return nil
            }
        }
        guard flush(), sawComponent, total.isFinite else { return nil }
        return total
    }

    /// A short human form: `2h5m`, `45s`, `3d4h`.
    public static func format(_ interval: TimeInterval) -> String {
        var seconds = Int(interval.rounded(.down))
        if seconds < 0 { return "-" + format(-interval) }
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
