import Foundation
import GRDB
import ReaperCore

/// What the store holds about one volume, with the clock floor and the
/// observation coverage applied (see `AccessStore.storedVolumes`).
public struct StoredVolume: Sendable, Hashable {
    public var path: String
    /// The last recorded access, raised to the clock floor; nil when the
    /// volume was only observed (watched, never accessed) and no floor is set.
    public var lastAccess: Date?
    /// Where `lastAccess` came from (`.store` when the floor gave it).
    public var source: LastAccessSource?
    /// When the store first heard of the volume.
    public var firstSeen: Date
    /// Start of the unbroken observation; nil when none (or coverage broke).
    public var observedSince: Date?

    public init(path: String, lastAccess: Date?, source: LastAccessSource?, firstSeen: Date, observedSince: Date?) {
        self.path = path
        self.lastAccess = lastAccess
        self.source = source
        self.firstSeen = firstSeen
        self.observedSince = observedSince
    }

    /// The record the reconciler takes; nil without a last access.
    public var accessRecord: AccessRecord? {
        guard let lastAccess, let source else { return nil }
        return AccessRecord(lastAccess: lastAccess, source: source, observedSince: observedSince)
    }
}

extension AccessStore {
    // MARK: Writes

    /// Records a batch of accesses (one write transaction; callers coalesce,
    /// e.g. every `flushInterval`). A stored time only ever moves forwards: the
    /// newer of stored and given wins, with its source (a tie keeps the stored
    /// one). A new volume gets `firstSeen` = the store's clock. A reaped row
    /// comes back to life only for an access after its reap.
    public func recordAccesses(_ accesses: [String: Date], source: LastAccessSource) throws {
        guard !accesses.isEmpty else { return }
        let firstSeen = clock().storeSeconds
        try writeTransaction("recordAccesses") { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO volume (path, lastAccess, source, firstSeen) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT (path) DO UPDATE SET
                    source = CASE WHEN volume.lastAccess IS NULL OR excluded.lastAccess > volume.lastAccess
                                  THEN excluded.source ELSE volume.source END,
                    lastAccess = CASE WHEN volume.lastAccess IS NULL OR excluded.lastAccess > volume.lastAccess
                                      THEN excluded.lastAccess ELSE volume.lastAccess END,
                    bytesFreed = CASE WHEN volume.reapedAt IS NOT NULL AND excluded.lastAccess > volume.reapedAt
                                      THEN NULL ELSE volume.bytesFreed END,
                    reapedAt = CASE WHEN volume.reapedAt IS NOT NULL AND excluded.lastAccess > volume.reapedAt
                                    THEN NULL ELSE volume.reapedAt END
                """)
            for (path, date) in accesses {
                try statement.execute(arguments: [path, date.storeSeconds, source.rawValue, firstSeen])
            }
        }
    }

    /// The daemon watches `paths` from `since`: sets `observedSince` where it
    /// is not set (an unbroken observation keeps its start). A volume the store
    /// does not know gets a row without a last access. Reaped rows are left.
    public func markObserved(_ paths: [String], since: Date) throws {
        guard !paths.isEmpty else { return }
        let firstSeen = clock().storeSeconds
        try writeTransaction("markObserved") { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO volume (path, firstSeen, observedSince) VALUES (?1, ?2, ?3)
                ON CONFLICT (path) DO UPDATE SET observedSince = excluded.observedSince
                WHERE volume.observedSince IS NULL AND volume.reapedAt IS NULL
                """)
            for path in paths {
                try statement.execute(arguments: [path, firstSeen, since.storeSeconds])
            }
        }
    }

    /// Forgets deleted volumes. Reaped rows stay as history.
    public func forget(_ paths: [String]) throws {
        guard !paths.isEmpty else { return }
        try writeTransaction("forget") { db in
            let statement = try db.cachedStatement(sql: "DELETE FROM volume WHERE path = ? AND reapedAt IS NULL")
            for path in paths {
                try statement.execute(arguments: [path])
            }
        }
    }

    /// Records a reap: the row stays for history (with `reapedAt` and
    /// `bytesFreed`) but no longer counts as a known volume.
    public func markReaped(path: String, at date: Date, bytesFreed: UInt64) throws {
        let firstSeen = clock().storeSeconds
        try writeTransaction("markReaped") { db in
            try db.execute(
                sql: """
                    INSERT INTO volume (path, firstSeen, reapedAt, bytesFreed) VALUES (?1, ?2, ?3, ?4)
                    ON CONFLICT (path) DO UPDATE SET
                        reapedAt = excluded.reapedAt, bytesFreed = excluded.bytesFreed, observedSince = NULL
                    """,
                arguments: [path, firstSeen, date.storeSeconds, Int64(clamping: bytesFreed)]
            )
        }
    }

    /// Deletes the history of volumes reaped before `date`; returns how many.
    @discardableResult
    public func pruneReaped(before date: Date) throws -> Int {
        try writeTransaction("pruneReaped") { db in
            try db.execute(sql: "DELETE FROM volume WHERE reapedAt IS NOT NULL AND reapedAt < ?", arguments: [date.storeSeconds])
            return db.changesCount
        }
    }

    // MARK: Reads

    /// The last access of every known, non-reaped volume for the reconciler:
    /// the stored time raised to the clock floor (source `.store` when the
    /// floor gave it), `observedSince` only while coverage holds (the latest
    /// session's last heartbeat or clean stop is at most `maxUnobservedGap`
    /// before `now`). Volumes only observed, never accessed, are left out
    /// unless a floor is set (see `storedVolumes` for them).
    ///
    /// `covering`: volumes on disk; those the store does not know get the
    /// floor as their last access when one is set, so a lost or replaced store
    /// never makes them look idle.
    public func accessRecords(now: Date, maxUnobservedGap: TimeInterval, covering paths: [String] = []) throws -> [String: AccessRecord] {
        let (volumes, floor) = try readTransaction("accessRecords") { db in
            (try Self.storedVolumes(db, now: now, maxUnobservedGap: maxUnobservedGap), try Schema.clockFloor(db))
        }
        var records = volumes.compactMapValues(\.accessRecord)
        if let floor {
            for path in paths where records[path] == nil {
                records[path] = AccessRecord(lastAccess: floor, source: .store, observedSince: nil)
            }
        }
        return records
    }

    /// Every known, non-reaped volume, including those observed but never
    /// accessed, with the floor and coverage applied as in `accessRecords`.
    public func storedVolumes(now: Date, maxUnobservedGap: TimeInterval) throws -> [String: StoredVolume] {
        try readTransaction("storedVolumes") { db in try Self.storedVolumes(db, now: now, maxUnobservedGap: maxUnobservedGap) }
    }

    /// The record of one volume, the floor applied. A volume the store does not
    /// know (or reaped) has the floor as its last access when one is set, else
    /// nil. `observedSince` is the stored value, unless `now` and
    /// `maxUnobservedGap` are given: then as in `accessRecords`.
    public func lastAccess(of path: String, now: Date? = nil, maxUnobservedGap: TimeInterval? = nil) throws -> AccessRecord? {
        try readTransaction("lastAccess") { db in
            let floor = try Schema.clockFloor(db)
            let covered = try now.map { now in try Self.isCovered(db, now: now, maxUnobservedGap: maxUnobservedGap ?? 0) } ?? true
            guard let row = try Row.fetchOne(db, sql: Self.volumeQuery + " AND path = ?", arguments: [path]) else {
                return floor.map { AccessRecord(lastAccess: $0, source: .store) }
            }
            var volume = Self.volume(from: row, floor: floor)
            if !covered { volume.observedSince = nil }
            return volume.accessRecord
        }
    }

    /// The clock floor: no volume's last access is older (nil when none).
    public func clockFloor() throws -> Date? {
        try readTransaction("clockFloor") { try Schema.clockFloor($0) }
    }

    // MARK: Row mapping

    static let volumeQuery = "SELECT path, lastAccess, source, firstSeen, observedSince FROM volume WHERE reapedAt IS NULL"

    static func storedVolumes(_ db: Database, now: Date, maxUnobservedGap: TimeInterval) throws -> [String: StoredVolume] {
        let floor = try Schema.clockFloor(db)
        let covered = try isCovered(db, now: now, maxUnobservedGap: maxUnobservedGap)
        var result: [String: StoredVolume] = [:]
        let rows = try Row.fetchCursor(db, sql: volumeQuery)
        while let row = try rows.next() {
            var volume = volume(from: row, floor: floor)
            if !covered { volume.observedSince = nil }
            result[volume.path] = volume
        }
        return result
    }

    /// Whether a daemon is watching now: the latest session's last heartbeat
    /// (or clean stop) is at most `maxUnobservedGap` before `now`.
    static func isCovered(_ db: Database, now: Date, maxUnobservedGap: TimeInterval) throws -> Bool {
        guard let session = try Schema.latestSession(db) else { return false }
        return now.timeIntervalSince(session.coverageEnd) <= maxUnobservedGap
    }

    static func volume(from row: Row, floor: Date?) -> StoredVolume {
        var lastAccess = (row["lastAccess"] as Double?).map(Date.init(timeIntervalSince1970:))
        // An unknown source (a newer writer's) reads as the store's own.
        var source = lastAccess == nil ? nil : ((row["source"] as String?).flatMap(LastAccessSource.init(rawValue:)) ?? .store)
        if let floor, lastAccess.map({ $0 < floor }) ?? true {
            lastAccess = floor
            source = .store
        }
        return StoredVolume(
            path: row["path"],
            lastAccess: lastAccess,
            source: source,
            firstSeen: Date(timeIntervalSince1970: row["firstSeen"]),
            observedSince: (row["observedSince"] as Double?).map(Date.init(timeIntervalSince1970:))
        )
    }
}
