import Foundation

/// The plan as a table for people: reaps first, human sizes and idle times,
/// the reasons, and a summary line.
public enum PlanTable {
    public static func render(_ plan: Plan, now: Date) -> String {
        var lines: [String] = []
        let manifests = plan.manifests
        let refreshed = manifests.refreshedAt.map { "refreshed \(DurationText.format(now.timeIntervalSince($0))) ago" } ?? "never refreshed"
        let state = manifests.complete ? "complete" : manifests.synced ? "INCOMPLETE" : "UNSYNCED"
        switch manifests.source {
        case .files:
            lines.append("manifests: \(manifests.path) (\(manifests.files) files, \(manifests.pods) pods) \(refreshed), \(state)")
        case .apiserver, .kubelet:
            let version = manifests.resourceVersion.map { ", resourceVersion \($0)" } ?? ""
            lines.append("pods from \(manifests.source.rawValue): \(manifests.path) (\(manifests.pods) pods\(version)) \(refreshed), \(state)")
        }
        for error in manifests.errors { lines.append("  error: \(error)") }
        for alert in plan.alerts { lines.append("ALERT \(alert.code.rawValue): \(alert.message)") }
        for (index, pressure) in plan.pressureFilesystems.enumerated() {
            let fs = pressure.filesystem
            let name = index == 0 ? "disk" : "disk \(fs.path)"
            lines.append("\(name): \(ByteCount.format(fs.availableBytes)) free of \(ByteCount.format(fs.totalBytes)) (\(String(format: "%.1f", fs.availablePercent))%), threshold \(ByteCount.format(pressure.thresholdBytes)): \(pressure.active ? "IN PRESSURE" : "no pressure")")
        }
        lines.append("")

        let header = ["VERDICT", "IDLE", "REAP IN", "SIZE", "POD", "PLUGIN", "VOLUME", "REASONS"]
        let rows = plan.volumes.sorted(by: order).map { verdict -> [String] in
            [
                verdict.verdict.rawValue,
                verdict.lastAccess == nil ? "-" : DurationText.format(TimeInterval(verdict.idleSeconds)),
                reapIn(verdict, now: plan.generatedAt),
                ByteCount.format(verdict.bytes),
                podLabel(verdict),
                verdict.plugin.unescaped,
                verdict.name,
                verdict.reasons.map(\.rawValue).joined(separator: ","),
            ]
        }
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        for row in [header] + rows {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            lines.append(cells.joined(separator: "  "))
        }
        lines.append("")
        lines.append(summaryLine(plan))
        return lines.joined(separator: "\n") + "\n"
    }

    public static func summaryLine(_ plan: Plan) -> String {
        let total = plan.summary.reap + plan.summary.keep
        return "\(total) volumes in \(plan.kubeletRoot): \(plan.summary.reap) to reap (\(ByteCount.format(plan.summary.bytes))), \(plan.summary.keep) to keep"
    }

    /// `now` for a reap, the time left for a volume kept only by time, else `-`.
    static func reapIn(_ verdict: VolumeVerdict, now: Date) -> String {
        if verdict.verdict == .reap { return "now" }
        guard let at = verdict.reapableAt else { return "-" }
        return DurationText.format(max(0, at.timeIntervalSince(now)))
    }

    static func podLabel(_ verdict: VolumeVerdict) -> String {
        let shortUID = String(verdict.podUID.prefix(8))
        if let pod = verdict.pod, let namespace = verdict.namespace { return "\(namespace)/\(pod)" }
        return verdict.orphan ? "(orphan \(shortUID))" : "(\(shortUID))"
    }

    static func order(_ lhs: VolumeVerdict, _ rhs: VolumeVerdict) -> Bool {
        if lhs.verdict != rhs.verdict { return lhs.verdict == .reap }
        let left = (podLabel(lhs), lhs.plugin.escaped, lhs.name)
        let right = (podLabel(rhs), rhs.plugin.escaped, rhs.name)
        return left < right
    }
}

/// Byte counts for people: `0 B`, `4.0 KiB`, `1.2 GiB`.
public enum ByteCount {
    public static func format(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : "\(String(format: "%.1f", value)) \(units[unit])"
    }
}
