import Foundation
import GRDB
import Logging
import ReaperCore
import Testing

@testable import AccessStore

/// Orphan sightings (`orphans.confirmAfter`) persist across runs.
@Suite("AccessStore orphan observations")
struct OrphanObservationTests {
    let logger = Logger(label: "access-store-tests")

    func sighting(_ uid: String, _ seconds: Int, _ write: String) -> OrphanObservation {
        OrphanObservation(
            podUID: uid, firstMissingAt: at(seconds), firstMissingBoot: BootInstant(bootID: "boot-1", seconds: Double(seconds)), snapshotFingerprint: write
        )
    }

    @Test("sightings survive reopening; the earliest wins; forgotten ones go")
    func persist() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        do {
            let store = try AccessStore(directory: directory.path, logger: logger)
            #expect(try store.orphanObservations().isEmpty)
            try store.recordOrphanObservations(OrphanObservationUpdate(missing: [sighting("a", 10, "w1"), sighting("b", 10, "w1")]))
            // A later sighting of "a" does not move its first one.
            try store.recordOrphanObservations(OrphanObservationUpdate(missing: [sighting("a", 99, "w2")], forget: ["b"]))
            try store.close()
        }
        let reopened = try AccessStore(directory: directory.path, logger: logger)
        #expect(try reopened.orphanObservations() == ["a": sighting("a", 10, "w1")])
        let readOnly = try #require(try AccessStore.openReadOnly(directory: directory.path, logger: logger))
        #expect(try readOnly.orphanObservations() == ["a": sighting("a", 10, "w1")])
        #expect(throws: AccessStoreError.self) { try readOnly.recordOrphanObservations(OrphanObservationUpdate(forget: ["a"])) }
    }

    @Test("a v1 database is migrated: its volumes stay, the table is added")
    func migratesV1() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let path = directory.appending("access.sqlite")
        do {
            let queue = try DatabaseQueue(path: path)
            var v1 = DatabaseMigrator()
            v1.registerMigration("v1-volumes-sessions") { db in
                try db.execute(sql: """
                    CREATE TABLE volume (path TEXT PRIMARY KEY NOT NULL, lastAccess REAL, source TEXT, firstSeen REAL NOT NULL,
                                         observedSince REAL, reapedAt REAL, bytesFreed INTEGER);
                    CREATE TABLE session (id INTEGER PRIMARY KEY AUTOINCREMENT, pid INTEGER NOT NULL, startedAt REAL NOT NULL,
                                          lastHeartbeat REAL NOT NULL, stoppedAt REAL, cleanStop BOOLEAN NOT NULL DEFAULT 0);
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                    INSERT INTO volume (path, lastAccess, source, firstSeen) VALUES ('/v/a', 1700000100, 'inotify', 1);
                    """)
            }
            try v1.migrate(queue)
        }
        let store = try AccessStore(directory: directory.path, logger: logger)
        #expect(store.replacedCorruptDatabase == nil)
        #expect(try store.accessRecords(now: at(200), maxUnobservedGap: 60)["/v/a"]?.lastAccess == at(100))
        try store.recordOrphanObservations(OrphanObservationUpdate(missing: [sighting("a", 10, "w1")]))
        #expect(try store.orphanObservations().count == 1)
    }
}
