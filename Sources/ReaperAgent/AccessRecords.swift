import AccessStore
import Foundation
import ReaperCore

extension AccessStore {
    /// What the reconciler needs from the store: every stored access, and,
    /// under `idle.requireObservation`, for volumes the daemon watched but
    /// never saw touched, the moment watching began as their last access, so
    /// they can be reaped once watched for all of `idle.after`. (Without it,
    /// time before watching is judged by mtimes, design §5.7.)
    func reconcilerRecords(now: Date, policy: Policy, covering paths: [String]) throws -> [String: AccessRecord] {
        let maxUnobservedGap = policy.idle.maxUnobservedGap
        var records = try accessRecords(now: now, maxUnobservedGap: maxUnobservedGap, covering: paths)
        guard policy.idle.requireObservation else { return records }
        for (path, volume) in try storedVolumes(now: now, maxUnobservedGap: maxUnobservedGap) where records[path] == nil {
            guard let since = volume.observedSince else { continue }
            records[path] = AccessRecord(lastAccess: since, source: .store, observedSince: since)
        }
        return records
    }
}
