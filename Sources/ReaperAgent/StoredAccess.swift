import AccessStore
import Foundation
import Logging
import Reaper
import ReaperCore

/// Last-access times for one-shot runs (`--plan`, `--once`): what the access
/// store holds, read while a daemon may be writing it. One-shot runs saw no
/// events themselves, so stored times say `store` (design §5.7). Also the
/// orphan sightings of earlier runs (`OrphanObservationLog`).
public final class StoredAccess: OrphanObservationLog, Sendable {
    private let store: AccessStore?
    private let policy: Policy
    private let logger: Logger

    init(store: AccessStore?, policy: Policy, logger: Logger) {
        self.store = store
        self.policy = policy
        self.logger = logger
    }

    /// Records for the volumes on disk (`paths`); empty without a store.
    /// Throws when the store exists but cannot be read: a reaper must not
    /// judge by mtimes alone what the store says was used.
    public func records(for paths: [String]) throws -> [String: AccessRecord] {
        guard let store else { return [:] }
        var records = try store.reconcilerRecords(now: Date(), policy: policy, covering: paths)
        for (path, record) in records where record.source == .inotify {
            records[path]?.source = .store
        }
        return records
    }

    /// Sightings of earlier runs; none without a store (no orphan is confirmed).
    public func orphanObservations() throws -> [String: OrphanObservation] {
        guard let store else { return [:] }
        return try store.orphanObservations()
    }

    /// Stores this run's sightings (`--once`); a read-only store (`--plan`) keeps none.
    public func recordOrphanObservations(_ update: OrphanObservationUpdate) throws {
        guard let store, !store.isReadOnly else { return }
        try store.recordOrphanObservations(update)
    }

    /// Notes reaped volumes in the store (`--once`).
    public func recordReaps(_ report: ReapReport) {
        guard let store, !store.isReadOnly else { return }
        for outcome in report.reaped {
            do {
                try store.markReaped(path: outcome.verdict.path, at: Date(), bytesFreed: outcome.stats.bytesFreed)
            } catch {
                logger.warning("could not record a reap in the access store", metadata: ["volume_path": "\(outcome.verdict.path)", "error": "\(error)"])
            }
        }
    }

    /// `--plan`: the store read-only, when one exists (a dry run creates nothing).
    public static func readOnly(stateDirectory: String, policy: Policy, logger: Logger) -> StoredAccess {
        let store: AccessStore?
        do {
            store = try AccessStore.openReadOnly(directory: stateDirectory, logger: logger)
        } catch {
            logger.warning("access store unreadable; judging by mtimes", metadata: ["state_dir": "\(stateDirectory)", "error": "\(error)"])
            store = nil
        }
        return StoredAccess(store: store, policy: policy, logger: logger)
    }

    /// `--once`: the store read-write (created when missing).
    public static func readWrite(stateDirectory: String, policy: Policy, logger: Logger) throws -> StoredAccess {
        let store = try AccessStore(directory: stateDirectory, logger: logger)
        return StoredAccess(store: store, policy: policy, logger: logger)
    }
}
