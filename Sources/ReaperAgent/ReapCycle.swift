import Foundation
import Logging
import PodManifests
import Reaper
import ReaperCore

/// One reconcile-and-reap cycle: plan, then the reaper's last checks and
/// deletions under the state directory's reaper lock. `--once` runs one; the
/// daemon runs one per interval.
public struct ReapCycle: Sendable {
    public var builder: PlanBuilder
    public var dryRun: Bool

    public init(builder: PlanBuilder, dryRun: Bool) {
        self.builder = builder
        self.dryRun = dryRun
    }

    public struct Result: Sendable {
        public var snapshot: NodeSnapshot
        public var report: ReapReport
        /// The orphan circuit breaker tripped (design §5.8).
        public var circuitBreakerTripped: Bool {
            snapshot.plan.alerts.contains { $0.code == .limitOrphanFraction }
        }
    }

    /// Runs the cycle. `access` is read for the plan and again, fresh, for
    /// each last check. Throws `ReaperLockError` when another process reaps.
    public func run(access: @escaping @Sendable ([String]) throws -> [String: AccessRecord], logger: Logger) throws -> Result {
        let lock: ReaperLock? = dryRun ? nil : try ReaperLock.acquire(stateDirectory: builder.configuration.stateDir)
        defer { lock?.release() }
        let snapshot = try builder.build(accessFor: access, logger: logger)
        let paths = snapshot.plan.volumes.map(\.path)
        // Fresh manifests for the last check: a pod may have been re-listed since.
        let manifests = dryRun ? snapshot.manifests : ManifestReader.read(
            path: builder.configuration.manifests, maxFileBytes: builder.configuration.maxManifestBytes
        )
        let reaper = VolumeReaper(kubeletRoot: builder.configuration.kubeletRoot, policy: builder.policy, mountInfoPath: builder.mountInfoPath)
        let report = reaper.execute(plan: snapshot.plan, manifests: manifests, access: { try? access(paths) }, dryRun: dryRun, logger: logger)
        ReapEventLog(logger: logger).record(report, plan: snapshot.plan)
        return Result(snapshot: snapshot, report: report)
    }
}
