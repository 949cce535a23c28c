import Foundation
import Logging
import NodeDiscovery
import Reaper
import ReaperCore

/// One reconcile-and-reap cycle: plan, then the reaper's last checks and
/// deletions under the state directory's reaper lock. `--once` runs one; the
/// daemon runs one per interval.
public struct ReapCycle: Sendable {
    public var builder: PlanBuilder
    public var dryRun: Bool
    /// The daemon's filter of outcomes that only repeat the last cycle's.
    public var repeatedOutcomes: RepeatedOutcomes?

    public init(builder: PlanBuilder, dryRun: Bool, repeatedOutcomes: RepeatedOutcomes? = nil) {
        self.repeatedOutcomes = repeatedOutcomes
        self.builder = builder
        self.dryRun = dryRun
    }

    public struct Result: Sendable {
        public var snapshot: NodeSnapshot
        public var report: ReapReport
        /// An orphan circuit breaker tripped (design §5.8): too many pod
        /// directories missing from the view, or a view that lost pods at once.
        public var circuitBreakerTripped: Bool {
            snapshot.plan.alerts.contains { $0.code == .limitOrphanFraction || $0.code == .podViewShrank }
        }
    }

    /// Runs the cycle. `access` is read for the plan and again, fresh, for
    /// each last check; so is the pod source (files are read again when they
    /// changed; the network sources answer from the view their loop keeps).
    /// `observations` persists orphan sightings (none: no orphan is
    /// confirmed). `scans` serves the plan's walks only: each last check
    /// walks afresh. Throws
    /// `ReaperLockError` when another process reaps.
    public func run(
        access: @escaping @Sendable ([String]) throws -> [String: AccessRecord], observations: (any OrphanObservationLog)? = nil,
        scans: (any VolumeScanSource)? = nil, logger: Logger
    ) throws -> Result {
        let lock: ReaperLock? = dryRun ? nil : try ReaperLock.acquire(stateDirectory: builder.configuration.stateDir)
        defer { lock?.release() }
        let snapshot = try builder.build(accessFor: access, observations: observations, scans: scans, logger: logger)
        let paths = snapshot.plan.volumes.map(\.path)
        var reaper = PlanExecutor(kubeletRoot: builder.configuration.kubeletRoot, policy: builder.policy, mountInfoPath: builder.mountInfoPath)
        reaper.podCgroups = builder.podCgroups
        if snapshot.plan.pressureFilesystems.contains(where: \.active), let gauge = builder.pressureGauge {
            // The plugin directory: on the volume's filesystem (a volume that
            // is a mount is never a pressure reap), and still there after.
            reaper.measureFree = { path in gauge.measureFree(volumePath: (path as NSString).deletingLastPathComponent) }
        }
        let report = reaper.execute(
            plan: snapshot.plan, currentPodView: { dryRun ? snapshot.manifests : builder.pods.currentSnapshot() },
            access: { try? access(paths) }, dryRun: dryRun, logger: logger
        )
        ReapEventLog(logger: logger, repeats: repeatedOutcomes).record(report, plan: snapshot.plan)
        return Result(snapshot: snapshot, report: report)
    }
}
