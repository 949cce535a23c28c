import Foundation
import GRDB

/// The database schema, one named migration per change. Times are REAL
/// seconds since 1970 (UTC), so that `MAX` and comparisons happen in SQL.
enum Schema {
    static let fileName = "access.sqlite"

    /// Keys of the `meta` table.
    enum MetaKey {
        /// No volume's last access is older than this (set when a corrupt
        /// database was replaced, or a daemon died without a clean stop).
        static let clockFloor = "clockFloor"
    }

    /// Sessions kept for history; older rows are pruned at each start.
    static let sessionsKept: Int64 = 100

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-volumes-sessions") { db in
            try db.execute(sql: """
                CREATE TABLE volume (
                    path TEXT PRIMARY KEY NOT NULL,
                    -- NULL while the volume was only observed, never accessed.
                    lastAccess REAL,
                    source TEXT,
                    firstSeen REAL NOT NULL,
                    observedSince REAL,
                    reapedAt REAL,
                    bytesFreed INTEGER
                );
                CREATE TABLE session (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    pid INTEGER NOT NULL,
                    startedAt REAL NOT NULL,
                    lastHeartbeat REAL NOT NULL,
                    stoppedAt REAL,
                    cleanStop BOOLEAN NOT NULL DEFAULT 0
                );
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                );
                """)
        }
        // Orphan confirmation (design §4.4): the first trusted snapshot each
        // orphan candidate was missing from. A lost table only delays orphans.
        migrator.registerMigration("v2-orphan-observations") { db in
            try db.execute(sql: """
                CREATE TABLE orphanObservation (
                    podUID TEXT PRIMARY KEY NOT NULL,
                    firstMissingAt REAL NOT NULL,
                    snapshotFingerprint TEXT NOT NULL
                );
                """)
        }
        // Confirmation measures on the boot clock (a wall-clock step must not
        // shorten it): each sighting keeps its boot and seconds since it.
        // Older sightings have none and start again.
        migrator.registerMigration("v3-orphan-boot-clock") { db in
            try db.execute(sql: """
                ALTER TABLE orphanObservation ADD COLUMN bootID TEXT;
                ALTER TABLE orphanObservation ADD COLUMN bootSeconds REAL;
                """)
        }
        return migrator
    }()

    static func clockFloor(_ db: Database) throws -> Date? {
        guard let text = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [MetaKey.clockFloor]),
              let seconds = Double(text)
        else { return nil }
        return Date(timeIntervalSince1970: seconds)
    }

    /// Raises the clock floor to `date`; never lowers it.
    static func raiseClockFloor(_ db: Database, to date: Date) throws {
        if let floor = try clockFloor(db), floor >= date { return }
        try db.execute(
            sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            arguments: [MetaKey.clockFloor, String(date.timeIntervalSince1970)]
        )
    }

    /// The newest session row, if any.
    static func latestSession(_ db: Database) throws -> SessionRow? {
        try Row.fetchOne(db, sql: "SELECT id, lastHeartbeat, stoppedAt, cleanStop FROM session ORDER BY id DESC LIMIT 1")
            .map { row in
                SessionRow(
                    id: row["id"],
                    lastHeartbeat: Date(timeIntervalSince1970: row["lastHeartbeat"]),
                    stoppedAt: (row["stoppedAt"] as Double?).map(Date.init(timeIntervalSince1970:)),
                    cleanStop: row["cleanStop"]
                )
            }
    }

    struct SessionRow {
        var id: Int64
        var lastHeartbeat: Date
        var stoppedAt: Date?
        var cleanStop: Bool

        /// The last moment this session is known to have been watching.
        var coverageEnd: Date { max(lastHeartbeat, stoppedAt ?? lastHeartbeat) }
    }
}

extension Date {
    /// The value stored in a REAL column.
    var storeSeconds: Double { timeIntervalSince1970 }
}
