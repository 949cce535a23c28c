import Foundation
import SystemCalls
import SystemPackage
import GRDB
import Logging

/// The durable last-access time of every volume (design §2, §4.1, §5.7):
/// `<state-dir>/access.sqlite`, SQLite in WAL mode through GRDB, so that a
/// one-shot `--plan` can read it while the daemon writes it.
///
/// Clocks never move backwards: accesses merge by maximum, and a database that
/// had to be replaced (corrupt) or a daemon that died without a clean stop
/// raises a "clock floor" under which no volume's last access can fall, so a
/// lost signal only delays a deletion (design §5.7).
public final class AccessStore: Sendable {
    /// The database file, `<directory>/access.sqlite`.
    public let path: String
    /// Where a corrupt database found at open was moved (nil when none was).
    public let replacedCorruptDatabase: String?
    /// Opened with `openReadOnly`: every write throws `.readOnly`.
    public let isReadOnly: Bool

    let pool: DatabasePool
    let logger: Logger
    let clock: @Sendable () -> Date

    /// Opens or creates `<directory>/access.sqlite` (and `directory`, mode
    /// 0700, when missing) and brings its schema up to date.
    ///
    /// A database that SQLite cannot read as one (garbage, truncated, failing
    /// `PRAGMA quick_check` or its migrations) is moved aside to
    /// `access.sqlite.corrupt-<UTC time>` with one error log line and replaced
    /// by a new one whose clock floor is now: every volume counts as accessed
    /// now at the latest, never as idle for longer than before. Failures that
    /// are no corruption (permissions, full disk, a lock, I/O) throw and leave
    /// the file alone.
    public init(directory: String, logger: Logger, clock: @escaping @Sendable () -> Date = Date.init) throws {
        let path = DatabaseFiles.databasePath(in: directory)
        try DatabaseFiles.createDirectory(directory)
        // Two processes opening a new store at once (the daemon and `--once`)
        // would race the migration, and the loser would take a healthy file
        // for a corrupt one: serialize opening with a lock file.
        let lockPath = directory + "/access.lock"
        let openLock: FileDescriptor
        do {
            openLock = try Syscall.openAt(nil, lockPath, flags: OpenFlags.readWrite | OpenFlags.create | OpenFlags.noFollow, mode: 0o600)
            try Syscall.lockExclusive(openLock, path: lockPath)
        } catch {
            throw AccessStoreError(.cannotOpen, path: lockPath, detail: "\(error)")
        }
        defer { Syscall.close(openLock) }
        var replaced: String?
        let pool: DatabasePool
        do {
            pool = try Self.openWriter(path: path)
        } catch let failure where failure.isCorruption {
            let now = clock()
            let movedTo = try DatabaseFiles.moveAside(path, at: now)
            logger.error(
                "access store database is corrupt: moved it aside and started a new one; every volume counts as accessed now",
                metadata: ["path": "\(path)", "moved_to": "\(movedTo)", "error": "\(failure)"]
            )
            do {
                pool = try Self.openWriter(path: path)
                try pool.write { try Schema.raiseClockFloor($0, to: now) }
            } catch {
                throw AccessStoreError(.cannotOpen, path: path, detail: "new database after moving the corrupt one aside: \(error)")
            }
            replaced = movedTo
        } catch let failure {
            throw AccessStoreError(.cannotOpen, path: path, detail: failure.description)
        }
        self.path = path
        self.pool = pool
        self.logger = logger
        self.clock = clock
        self.replacedCorruptDatabase = replaced
        self.isReadOnly = false
    }

    private init(readOnlyPool pool: DatabasePool, path: String, logger: Logger) {
        self.path = path
        self.pool = pool
        self.logger = logger
        self.clock = Date.init
        self.replacedCorruptDatabase = nil
        self.isReadOnly = true
    }

    /// Opens the store in `directory` read-only, for a one-shot run while a
    /// daemon may be writing it (WAL). Returns nil when there is no database
    /// yet, or (with a warning) when it is corrupt or not initialised: this
    /// never creates the database or the directory and never moves anything.
    /// (SQLite itself may create the empty `-wal` and `-shm` companions of a
    /// WAL database that no process has open.) Throws when the file exists but
    /// cannot be opened (permissions, I/O), so a caller does not silently fall
    /// back to mtimes only.
    public static func openReadOnly(directory: String, logger: Logger) throws -> AccessStore? {
        let path = DatabaseFiles.databasePath(in: directory)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        configuration.label = "AccessStore.readonly"
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            let (problems, migrated) = try pool.read { db in
                (try String.fetchAll(db, sql: "PRAGMA quick_check"), try Schema.migrator.hasCompletedMigrations(db))
            }
            if problems != ["ok"] {
                try? pool.close()
                logger.warning(
                    "access store database is corrupt; reading without stored access times",
                    metadata: ["path": "\(path)", "error": "quick_check: \(problems.prefix(3).joined(separator: "; "))"]
                )
                return nil
            }
            if !migrated {
                try? pool.close()
                logger.warning("access store database is not initialised yet; reading without stored access times", metadata: ["path": "\(path)"])
                return nil
            }
        } catch {
            let failure = StoreOpenError(stage: "open read-only", error: error)
            if failure.isCorruption {
                logger.warning(
                    "access store database is corrupt; reading without stored access times",
                    metadata: ["path": "\(path)", "error": "\(failure)"]
                )
                return nil
            }
            throw AccessStoreError(.cannotOpen, path: path, detail: failure.description)
        }
        return AccessStore(readOnlyPool: pool, path: path, logger: logger)
    }

    /// Closes the database. A writer first moves its WAL into the main file
    /// (a checkpoint that waits for running readers at most the busy timeout):
    /// the pool's last connection to close is a read-only one, which cannot.
    /// Later calls throw.
    public func close() throws {
        do {
            if !isReadOnly {
                try pool.writeWithoutTransaction { _ = try $0.checkpoint(.truncate) }
            }
            try pool.close()
        } catch {
            throw AccessStoreError(.query, path: path, detail: "close: \(error)")
        }
    }

    /// The value of `PRAGMA <name>` (diagnostics and tests).
    func pragma(_ name: String) throws -> String? {
        try readTransaction("pragma \(name)") { try String.fetchOne($0, sql: "PRAGMA \(name)") }
    }

    // MARK: Opening

    /// Opens, checks and migrates the writer's pool.
    private static func openWriter(path: String) throws(StoreOpenError) -> DatabasePool {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "AccessStore"
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw StoreOpenError(stage: "open", error: error)
        }
        do {
            let problems = try pool.read { try String.fetchAll($0, sql: "PRAGMA quick_check") }
            guard problems == ["ok"] else {
                try? pool.close()
                throw StoreOpenError(stage: "quick_check", message: problems.prefix(3).joined(separator: "; "))
            }
        } catch let failure as StoreOpenError {
            throw failure
        } catch {
            try? pool.close()
            throw StoreOpenError(stage: "quick_check", error: error)
        }
        do {
            try Schema.migrator.migrate(pool)
        } catch {
            try? pool.close()
            throw StoreOpenError(stage: "migrate", error: error)
        }
        return pool
    }

    // MARK: Access helpers

    /// Runs `body` in one write transaction; errors become `AccessStoreError`.
    func writeTransaction<T>(_ operation: String, _ body: (Database) throws -> T) throws -> T {
        guard !isReadOnly else {
            throw AccessStoreError(.readOnly, path: path, detail: "\(operation) on a store opened read-only")
        }
        do {
            return try pool.write(body)
        } catch let error as AccessStoreError {
            throw error
        } catch {
            throw AccessStoreError(.query, path: path, detail: "\(operation): \(error)")
        }
    }

    /// Runs `body` in one read transaction (a consistent snapshot).
    func readTransaction<T>(_ operation: String, _ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.read(body)
        } catch {
            throw AccessStoreError(.query, path: path, detail: "\(operation): \(error)")
        }
    }
}

/// Why opening failed, and whether that means the file is corrupt (move it
/// aside) or the environment is at fault (leave it alone and throw).
struct StoreOpenError: Error, CustomStringConvertible {
    var stage: String
    var message: String
    var isCorruption: Bool

    init(stage: String, message: String) {
        self.stage = stage
        self.message = message
        self.isCorruption = true
    }

    init(stage: String, error: any Error) {
        self.stage = stage
        self.message = "\(error)"
        if let error = error as? DatabaseError {
            self.isCorruption = Self.corruptionCodes.contains(error.resultCode)
        } else {
            self.isCorruption = false
        }
    }

    /// Codes that say the file is not a sound database of ours. Everything else
    /// (BUSY, LOCKED, IOERR, FULL, CANTOPEN, PERM, READONLY, NOMEM, ...) says
    /// the environment is at fault: moving a healthy file aside would lose it.
    static let corruptionCodes: [ResultCode] = [
        .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_FORMAT, .SQLITE_ERROR, .SQLITE_SCHEMA,
        .SQLITE_MISMATCH, .SQLITE_CONSTRAINT, .SQLITE_RANGE, .SQLITE_TOOBIG, .SQLITE_EMPTY, .SQLITE_INTERNAL,
    ]

    var description: String { "\(stage): \(message)" }
}
