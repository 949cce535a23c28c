import BoundedYAML
import Foundation
import ReaperCore

/// A policy as a few human lines, for `volume-reaper policy check` and logs.
public enum PolicyDescription {
    /// One line: `idle after 30m (mtime); annotation ...; phases Succeeded, Failed; ...`.
    public static func summary(_ policy: Policy) -> String {
        lines(policy).joined(separator: "; ")
    }

    /// The policy reference (README's "Policy reference" table, Markdown):
    /// every key the reader accepts, its default and what it does, made from
    /// the reader's own table (`PolicySchema`).
    public static var reference: String {
        PolicySchema.schema.referenceTable()
    }

    /// The summary's parts, one per section.
    public static func lines(_ policy: Policy) -> [String] {
        [idle(policy.idle), annotation(policy.annotation), pods(policy.pods), orphans(policy.orphans),
         volumes(policy.volumes), limits(policy.limits)] + (policy.pressure.map { [pressure($0)] } ?? [])
    }

    static func pressure(_ pressure: Policy.Pressure) -> String {
        let threshold = pressure.available.map { "below \($0.description) free" } ?? "below the kubelet's eviction threshold + \(PolicyReader.formatFraction(pressure.margin)) points"
        return "pressure mode \(threshold): terminated and orphan volumes idle \(duration(pressure.idleAfter)) go, biggest first, up to \(pressure.maxReapsPerCycle)/cycle; free space measured every \(duration(pressure.checkInterval))"
    }

    static func idle(_ idle: Policy.Idle) -> String {
        var text = "idle after \(duration(idle.after)) (\(idle.timestamps.map(\.rawValue).joined(separator: ", "))"
        if idle.requireObservation {
            text += "; only when watched throughout, gaps up to \(duration(idle.maxUnobservedGap))"
        }
        return text + ")"
    }

    static func annotation(_ annotation: Policy.Annotation) -> String {
        "annotation \(annotation.key) older than \(duration(annotation.idleAfter))"
            + (annotation.required ? " (required)" : " (when present)")
    }

    static func pods(_ pods: Policy.Pods) -> String {
        var parts = [pods.phases.isEmpty ? "no pod phase (orphans only)" : "phases " + list(pods.phases.map(\.rawValue))]
        if !pods.excludeOwnerKinds.isEmpty { parts.append("not owned by " + list(pods.excludeOwnerKinds)) }
        if !pods.excludeNamespaces.isEmpty { parts.append("not in " + list(pods.excludeNamespaces)) }
        parts.append("kept if annotated \(pods.protectAnnotation)")
        return parts.joined(separator: ", ")
    }

    static func orphans(_ orphans: Policy.Orphans) -> String {
        guard orphans.reap else { return "orphans kept" }
        return "orphans reaped when manifests < \(duration(orphans.manifestsMaxAge)) old"
            + (orphans.removePodDir ? " (pod dir removed too)" : "")
    }

    static func volumes(_ volumes: Policy.Volumes) -> String {
        let kinds = volumes.recursive.map { shortName($0) }
        var parts = [kinds.isEmpty ? "no contents deleted (empty dirs only)" : "contents of " + list(kinds)]
        if !volumes.exclude.isEmpty { parts.append("excluding " + list(volumes.exclude.map(\.unescaped))) }
        parts.append(volumes.unmount.isEmpty ? "mounted volumes kept" : "unmounting " + list(volumes.unmount))
        return parts.joined(separator: ", ")
    }

    static func limits(_ limits: Policy.Limits) -> String {
        "max \(limits.maxReapsPerCycle) reaps/cycle, orphan fraction \(PolicyReader.formatFraction(limits.maxOrphanFraction)), \(limits.maxPodsLost) pods lost at once"
    }

    /// `empty-dir` for `kubernetes.io/empty-dir`; other vendors in full.
    static func shortName(_ plugin: PluginName) -> String {
        let text = plugin.unescaped
        return text.hasPrefix("kubernetes.io/") ? String(text.dropFirst("kubernetes.io/".count)) : text
    }

    static func duration(_ interval: TimeInterval) -> String {
        // DurationText.format drops minutes once there are days; keep them exact here.
        guard interval.isFinite, (0..<9e15).contains(interval) else { return DurationText.format(interval) }
        if interval != interval.rounded(.down) { return String(format: "%gs", interval) }
        let seconds = Int(interval)
        let days = seconds / 86400, hours = seconds % 86400 / 3600, minutes = seconds % 3600 / 60, rest = seconds % 60
        var text = ""
        if days > 0 { text += "\(days)d" }
        if hours > 0 { text += "\(hours)h" }
        if minutes > 0 { text += "\(minutes)m" }
        if rest > 0 || text.isEmpty { text += "\(rest)s" }
        return text
    }

    static func list(_ items: [String]) -> String { items.isEmpty ? "none" : items.joined(separator: ", ") }
}
