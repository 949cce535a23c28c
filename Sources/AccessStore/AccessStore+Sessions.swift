import Foundation
import GRDB
import SystemCalls


/// What `statistics()` reports, for status output.
public struct AccessStoreStatistics: Sendable, Hashable {
    /// Known, non-reaped volumes.
    public var volumes: Int
    /// Of those, the ones with an `observedSince` stored.
    public var observedVolumes: Int
    /// Reaped volumes kept as history, and the bytes their reaps freed.
    public var reapedVolumes: Int
    public var bytesFreed: UInt64
    /// Daemon sessions on record (the newest few).
    public var sessions: Int
    /// The latest session's last heartbeat (or clean stop).
    public var lastHeartbeat: Date?
    public var clockFloor: Date?

    public init(
        volumes: Int, observedVolumes: Int, reapedVolumes: Int, bytesFreed: UInt64, sessions: Int,
        lastHeartbeat: Date?, clockFloor: Date?
    ) {
        self.volumes = volumes
        self.observedVolumes = observedVolumes
        self.reapedVolumes = reapedVolumes
        self.bytesFreed = bytesFreed
        self.sessions = sessions
        self.lastHeartbeat = lastHeartbeat
        self.clockFloor = clockFloor
    }
}

extension AccessStore {
    /// A daemon starts watching at `at`. Call once per daemon run, after the
    /// initial crawl has set its watches (one-shot runs do not begin sessions).
    ///
    /// - Observation restarts (every `observedSince` is cleared) when there was
    ///   no previous session, or the previous one's clean stop or last
    ///   heartbeat is more than `maxUnobservedGap` before `at`: nobody watched
    ///   in between, so `idle.requireObservation` clocks start again.
    /// - A previous session that never stopped cleanly (kill -9, power loss)
    ///   lost the events it had not flushed, at unknown times before `at`: the
    ///   clock floor rises to `at`, so no volume looks older than it is.
    public func beginSession(at date: Date, maxUnobservedGap: TimeInterval) throws -> Int64 {
        let (id, previous, reset) = try writeTransaction("beginSession") { db in
            let previous = try Schema.latestSession(db)
            let reset = previous.map { date.timeIntervalSince($0.coverageEnd) > maxUnobservedGap } ?? true
            if reset {
                try db.execute(sql: "UPDATE volume SET observedSince = NULL WHERE observedSince IS NOT NULL")
            }
            if let previous, !previous.cleanStop {
                try Schema.raiseClockFloor(db, to: date)
            }
            try db.execute(
                sql: "INSERT INTO session (pid, startedAt, lastHeartbeat, cleanStop) VALUES (?, ?, ?, 0)",
                arguments: [Int64(Syscall.processID()), date.storeSeconds, date.storeSeconds]
            )
            let id = db.lastInsertedRowID
            try db.execute(sql: "DELETE FROM session WHERE id <= ?", arguments: [id - Schema.sessionsKept])
            return (id, previous, reset)
        }
        if let previous, !previous.cleanStop {
            logger.warning(
                "previous daemon session did not stop cleanly: its unflushed events are lost, so every volume counts as accessed now",
                metadata: [
                    "path": "\(path)", "session": "\(previous.id)",
                    "last_heartbeat": "\(previous.lastHeartbeat.formatted(.iso8601))",
                ]
            )
        }
        if reset, let previous {
            logger.info(
                "watch gap longer than maxUnobservedGap: observation restarts for every volume",
                metadata: [
                    "path": "\(path)", "session": "\(id)",
                    "gap_seconds": "\(Int(date.timeIntervalSince(previous.coverageEnd)))",
                    "max_unobserved_gap_seconds": "\(Int(maxUnobservedGap))",
                ]
            )
        }
        return id
    }

    /// The daemon of `session` is still watching at `at` (never moves back).
    public func heartbeat(session: Int64, at date: Date) throws {
        try writeTransaction("heartbeat") { db in
            try db.execute(
                sql: "UPDATE session SET lastHeartbeat = MAX(lastHeartbeat, ?) WHERE id = ?",
                arguments: [date.storeSeconds, session]
            )
            guard db.changesCount == 1 else {
                throw AccessStoreError(.unknownSession, path: path, detail: "heartbeat for session \(session)")
            }
        }
    }

    /// A clean stop of `id` at `at` (after the final flush).
    public func endSession(_ id: Int64, at date: Date) throws {
        try writeTransaction("endSession") { db in
            try db.execute(
                sql: "UPDATE session SET stoppedAt = ?1, lastHeartbeat = MAX(lastHeartbeat, ?1), cleanStop = 1 WHERE id = ?2",
                arguments: [date.storeSeconds, id]
            )
            guard db.changesCount == 1 else {
                throw AccessStoreError(.unknownSession, path: path, detail: "endSession for session \(id)")
            }
        }
    }

    /// Counts for status output.
    public func statistics() throws -> AccessStoreStatistics {
        try readTransaction("statistics") { db in
            let volumes = try Row.fetchOne(db, sql: """
                SELECT
                    COUNT(*) FILTER (WHERE reapedAt IS NULL) AS volumes,
                    COUNT(*) FILTER (WHERE reapedAt IS NULL AND observedSince IS NOT NULL) AS observed,
                    COUNT(*) FILTER (WHERE reapedAt IS NOT NULL) AS reaped,
                    COALESCE(SUM(bytesFreed) FILTER (WHERE reapedAt IS NOT NULL), 0) AS bytesFreed
                FROM volume
                """)
            let sessions = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM session") ?? 0
            return AccessStoreStatistics(
                volumes: volumes?["volumes"] ?? 0,
                observedVolumes: volumes?["observed"] ?? 0,
                reapedVolumes: volumes?["reaped"] ?? 0,
                bytesFreed: UInt64(clamping: (volumes?["bytesFreed"] as Int64?) ?? 0),
                sessions: sessions,
                lastHeartbeat: try Schema.latestSession(db)?.coverageEnd,
                clockFloor: try Schema.clockFloor(db)
            )
        }
    }
}
