import Foundation

/// Disk pressure mode and the forecast (issue 11), kept apart from the idle
/// rule they build on.
extension Reconciler {
    /// Reasons that only time lifts: the forecast's volumes.

    /// When a volume kept only for time-based reasons becomes reapable if
    /// nothing touches it again; nil for any other verdict, or when one of
    /// the clocks is unknown.
    static func reapableAt(keepReasons: [Reason], lastAccess: Date?, pods: [Pod], observedSince: Date?, policy: Policy) -> Date? {
        guard !keepReasons.isEmpty, keepReasons.allSatisfy(\.isTimeBased) else { return nil }
        var moments: [Date] = []
        if keepReasons.contains(.recentAccess) {
            guard let lastAccess else { return nil }
            moments.append(lastAccess.addingTimeInterval(policy.idle.after))
        }
        if keepReasons.contains(.annotationRecent) {
            let stamps = pods.compactMap { $0.annotations[policy.annotation.key].flatMap(RFC3339.parse) }
            guard let newest = stamps.max() else { return nil }
            moments.append(newest.addingTimeInterval(policy.annotation.idleAfter))
        }
        if keepReasons.contains(.notObservedLongEnough) {
            guard let observedSince else { return nil }
            moments.append(observedSince.addingTimeInterval(policy.idle.after))
        }
        return moments.max()
    }

    /// In pressure, terminated pods' and orphans' volumes kept only for
    /// recent access, idle for at least `pressure.idleAfter`, go too: the
    /// biggest first, until what the plan frees covers what is needed to be
    /// back at the threshold, and no further. Each filesystem in pressure
    /// counts only the volumes on it; a volume on a filesystem that was not
    /// measured is never a pressure reap. Nothing else changes: any other
    /// keep reason (a live or excluded pod, a mount, a lock, an unconfirmed
    /// orphan...) still keeps.
    static func applyPressure(_ verdicts: inout [VolumeVerdict], pressure: inout DiskPressure, devices: [String: String], settings: Policy.Pressure) {
        let measured = pressure
        var assessed = measured.all
        for position in assessed.indices where assessed[position].active {
            let assessment = assessed[position]
            let onFilesystem = { (verdict: VolumeVerdict) in
                measured.assessment(forVolumeOn: devices[verdict.path])?.filesystem == assessment.filesystem
            }
            var pressureReaps = 0
            let reaps = verdicts.filter { $0.verdict == .reap && onFilesystem($0) }
            var bytesNeeded = Int64(clamping: assessment.bytesNeeded) - Int64(clamping: reaps.reduce(UInt64(0)) { $0 + $1.bytes })
            var inodesNeeded = Int64(clamping: assessment.inodesNeeded) - Int64(reaps.reduce(0) { $0 + $1.files })
            let candidates = verdicts.indices
                .filter { index in
                    let verdict = verdicts[index]
                    return verdict.verdict == .keep && !verdict.reasons.isEmpty && verdict.reasons.allSatisfy(\.allowsPressureReap)
                        && verdict.lastAccess != nil
                        && TimeInterval(verdict.idleSeconds) >= settings.idleAfter && onFilesystem(verdict)
                }
                .sorted { (verdicts[$0].bytes, verdicts[$1].path) > (verdicts[$1].bytes, verdicts[$0].path) }
            for index in candidates {
                guard bytesNeeded > 0 || inodesNeeded > 0 else { break }
                // Kept only for recent access: the pod is terminated, or a confirmed orphan.
                verdicts[index].verdict = .reap
                verdicts[index].reasons = [verdicts[index].orphan ? .orphan : .podTerminated, .diskPressure].sorted()
                verdicts[index].reapableAt = nil
                pressureReaps += 1
                bytesNeeded -= Int64(clamping: verdicts[index].bytes)
                inodesNeeded -= Int64(verdicts[index].files)
            }
            assessed[position].pressureReaps = pressureReaps
        }
        pressure = DiskPressure(kubeletRoot: assessed[0], elsewhere: Array(assessed.dropFirst()))
    }

    /// Each volume's filesystem (`major:minor`), where its walk read it.
    static func volumeDevices(_ inventory: NodeInventory) -> [String: String] {
        var devices: [String: String] = [:]
        for directory in inventory.pods {
            for volume in directory.volumes {
                if let device = volume.scan.device { devices[volume.path] = device }
            }
        }
        return devices
    }

    /// The order reaps go in and limits cut: by the idle rule the most idle
    /// first; then the disk-pressure reaps, the most bytes first.
    public static func reapOrder(_ lhs: VolumeVerdict, _ rhs: VolumeVerdict) -> Bool {
        let lhsPressure = lhs.reasons.contains(.diskPressure), rhsPressure = rhs.reasons.contains(.diskPressure)
        if lhsPressure != rhsPressure { return rhsPressure }
        if lhsPressure { return (lhs.bytes, rhs.path) > (rhs.bytes, lhs.path) }
        return (lhs.idleSeconds, rhs.path) > (rhs.idleSeconds, lhs.path)
    }
}
