import Foundation
import NodeDiscovery
import PodSources
import Reaper
import ReaperCore
import SocketAPI
import VolumeWatcher

/// What one daemon cycle did: the plan it made and what the reaper did with
/// it, or why it failed; with what the node looked like as it ended.
struct CycleOutcome: Sendable {
    var trigger: String
    var startedAt: Date
    var finishedAt: Date
    var duration: Duration
    var dryRun: Bool
    var result: Result
    /// When a cycle last reaped (this one, or an earlier one).
    var lastReap: Date?
    var podSource: PodSourceStatus
    var watcher: WatcherStatus
    var livenessTreeFound: Bool

    enum Result: Sendable {
        case planned(Planned)
        /// Nothing was deleted in this cycle.
        case failed(String)
    }

    struct Planned: Sendable {
        /// The plan as made.
        var plan: Plan
        /// The plan as served: with the last check's keeps (`keepAfterLastCheck`).
        var served: Plan
        var report: ReapReport
        var scans: VolumeScanCache.CycleCounts
        var lastFullWalk: Date?
        var pressure: PressureStatus?
    }

    var planned: Planned? {
        if case .planned(let planned) = result { return planned }
        return nil
    }

    var seconds: Double { duration.timeInterval }
}

/// Reads each cycle's outcome, on the work queue as the cycle ends.
protocol CycleObserver: Sendable {
    func cycleEnded(_ outcome: CycleOutcome)
}

extension PressureStatus {
    /// Pressure mode's state for status and metrics; nil without a pressure section.
    init?(plan: Plan, secondsInPressure: Double) {
        guard let assessment = plan.pressure else { return nil }
        let filesystems = plan.pressureFilesystems
        self.init(
            active: filesystems.contains(where: \.active), nothingToReap: filesystems.contains(where: \.nothingToReap),
            filesystem: assessment.filesystem, thresholdBytes: assessment.thresholdBytes, thresholdInodes: assessment.thresholdInodes,
            reclaimableNow: Forecast.reclaimable(in: plan, within: 0), reclaimableWithin1h: Forecast.reclaimable(in: plan, within: 3600),
            reclaimableWithin6h: Forecast.reclaimable(in: plan, within: 6 * 3600), secondsInPressure: secondsInPressure,
            elsewhere: plan.pressureElsewhere
        )
    }
}

/// A cycle that failed (nothing was deleted in it), as `reconcileNow` throws it.
struct CycleFailed: Error, Sendable, CustomStringConvertible {
    var description: String
}
