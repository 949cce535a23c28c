import AccessStore
import Foundation
import Logging
import Reaper
import ReaperCore
import Synchronization
import VolumeWatcher

/// What the watcher saw, moved into the access store, and the records the
/// plan and every last check judge by. Every method runs on the daemon's work
/// queue, where the plan and each last check read: drain and write happen
/// together, so for those readers an access is always in the watcher or the
/// store, never in between.
final class AccessLedger: Sendable {
    let store: AccessStore
    let watcher: VolumeWatcher
    let logger: Logger
    /// Volumes whose observedSince this run has set (`markObserved`).
    private let markedObserved = Mutex<Set<String>>([])

    init(store: AccessStore, watcher: VolumeWatcher, logger: Logger) {
        self.store = store
        self.watcher = watcher
        self.logger = logger
    }

    /// Drains the watcher into the store (coalesced writes). A failed write
    /// puts the drain back.
    @discardableResult
    func flush() -> WatcherDrain {
        let drain = watcher.drainAccesses()
        guard !drain.isEmpty else { return drain }
        do {
            if !drain.accesses.isEmpty { try store.recordAccesses(drain.accesses, source: .inotify) }
            if !drain.removed.isEmpty {
                // Forgotten rows lose their observedSince: mark them again if they come back.
                markedObserved.withLock { $0.subtract(drain.removed) }
                try store.forget(Array(drain.removed))
            }
        } catch {
            watcher.requeue(drain)
            logger.error("could not write the access store", metadata: ["error": "\(error)"])
        }
        return drain
    }

    /// Last-access records for `paths` as of now: for the plan and again for
    /// every last check before a deletion. Every event the kernel queued
    /// before this call counts (design §5.6, §5.7): the watcher handles its
    /// queue first, its accesses are stored, and after a lost signal (an
    /// inotify overflow) every path counts as accessed at that moment, or now
    /// while the rescan runs.
    func records(covering paths: [String], policy: Policy) throws -> [String: AccessRecord] {
        watcher.synchronize()
        let drain = flush()
        let now = Date()
        var records = try store.reconcilerRecords(now: now, policy: policy, covering: paths)
        // Also from memory: a failed store write must not hide an access.
        for (path, time) in drain.accesses { Self.note(access: time, of: path, in: &records) }
        if let lost = watcher.lostSignalsAccess(now: now) {
            for path in paths { Self.note(access: lost, of: path, in: &records) }
        }
        return records
    }

    /// Starts the observation clock of the watched volumes not marked yet in
    /// this run: marking is a no-op for the rest (observedSince is set once),
    /// and 300 upserts a cycle were a good part of a quiet node's cost.
    func markObserved(_ watched: Set<String>, since now: Date) throws {
        let fresh = watched.subtracting(markedObserved.withLock { $0 })
        try store.markObserved(Array(fresh), since: now)
        markedObserved.withLock { $0 = $0.intersection(watched).union(fresh) }
    }

    func markReaped(_ report: ReapReport) {
        for outcome in report.reaped {
            try? store.markReaped(path: outcome.verdict.path, at: Date(), bytesFreed: outcome.stats.bytesFreed)
        }
    }

    private static func note(access time: Date, of path: String, in records: inout [String: AccessRecord]) {
        guard var record = records[path] else {
            records[path] = AccessRecord(lastAccess: time, source: .inotify)
            return
        }
        guard time > record.lastAccess else { return }
        record.lastAccess = time
        record.source = .inotify
        records[path] = record
    }
}
