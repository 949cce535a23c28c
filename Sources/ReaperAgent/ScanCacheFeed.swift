import Foundation
import Logging
import NodeDiscovery
import ReaperCore
import Synchronization
import VolumeWatcher

/// The daemon's scan cache and what feeds it (issue 10): the watcher's dirty
/// volumes, `/proc/locks`, the policy's hidden signals. Used on the
/// controller's work queue only; the lock is for the status readers.
final class ScanCacheFeed: Sendable {
    struct Status: Sendable {
        var last = VolumeScanCache.CycleCounts()
        var lastFullWalk: Date?
        var noticedAtime = false
    }

    private let cache: Mutex<VolumeScanCache>
    private let status = Mutex(Status())
    private let watcher: VolumeWatcher
    private let watchReads: Bool
    private let locksPath: String
    private let logger: Logger

    init(fullScanInterval: TimeInterval, watcher: VolumeWatcher, watchReads: Bool, logger: Logger, locksPath: String = "/proc/locks") {
        cache = Mutex(VolumeScanCache(fullScanInterval: fullScanInterval))
        self.watcher = watcher
        self.watchReads = watchReads
        self.locksPath = locksPath
        self.logger = logger
    }

    var lastCycle: Status { status.withLock { $0 } }

    /// Starts a cycle: takes the watcher's dirty volumes now, before any walk.
    func beginCycle(policy: Policy, now: Date) -> VolumeScanCycle {
        let dirty = watcher.drainDirtyVolumes()
        var everything = dirty.everything
        if policy.idle.timestamps.contains(.atime), !watchReads {
            everything = true
            let first = status.withLock { status in
                defer { status.noticedAtime = true }
                return !status.noticedAtime
            }
            if first {
                logger.notice(
                    "the policy counts atime but reads are not watched: every volume is walked in every cycle",
                    metadata: ["timestamps": "\(policy.idle.timestamps.map(\.rawValue))", "watchReads": "false"]
                )
            }
        }
        let locks = HeldLocks.flockedInodes(path: locksPath)
        if locks == nil { everything = true }
        let coverage = ScanCoverage(
            dirty: dirty.volumes, everythingDirty: everything, watched: dirty.watched, flockedInodes: locks ?? []
        )
        return cache.withLock { $0.beginCycle(coverage: coverage, now: now) }
    }

    /// The cycle's discovery succeeded: keep its walks.
    func finish(_ cycle: VolumeScanCycle) -> VolumeScanCache.CycleCounts {
        let (counts, lastFullWalk) = cache.withLock { cache in (cache.finish(cycle), cache.lastFullWalk) }
        status.withLock { status in
            status.last = counts
            status.lastFullWalk = lastFullWalk
        }
        return counts
    }

    /// Volumes the last check kept: walked again in the next cycle.
    func forget(_ paths: some Collection<String>) {
        guard !paths.isEmpty else { return }
        cache.withLock { $0.forget(paths) }
    }

    /// The cycle failed: the dirty marks it took may not all have been acted on.
    func invalidate() {
        cache.withLock { $0.invalidate() }
    }
}
