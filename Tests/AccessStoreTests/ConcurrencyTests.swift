import Foundation
import Logging
import ReaperCore
import Synchronization
import Testing
import TestSupport

@testable import AccessStore

/// The sqlite3 shell, for a second process on the same database.
let sqliteShell = "/usr/bin/sqlite3"
let sqliteShellAvailable = FileManager.default.isExecutableFile(atPath: sqliteShell)

@Suite("AccessStore WAL and readers")
struct ConcurrencyTests {
    let logger = Logger(label: "access-store-tests")

    @Test("the database is in WAL mode")
    func walMode() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        try store.recordAccesses(["/v/a": at(1)], source: .inotify)
        #expect(try store.pragma("journal_mode") == "wal")
        // The file header says so too (bytes 18 and 19: format version 2 = WAL).
        let header = try FileHandle(forReadingFrom: URL(fileURLWithPath: store.path)).read(upToCount: 20) ?? Data()
        #expect(Array(header.suffix(2)) == [2, 2])
        let reader = try #require(try AccessStore.openReadOnly(directory: directory.path, logger: logger))
        #expect(try reader.pragma("journal_mode") == "wal")
    }

    @Test("no database yet: a reader gets nil and creates nothing")
    func readOnlyWithoutDatabase() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        #expect(try AccessStore.openReadOnly(directory: directory.path, logger: logger) == nil)
        #expect(try directory.entries().isEmpty)
        let missing = directory.appending("missing")
        #expect(try AccessStore.openReadOnly(directory: missing, logger: logger) == nil)
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    @Test("an empty database file (a writer about to migrate it) reads as none")
    func readOnlyUninitialised() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        try writeBytes([], to: directory.appending("access.sqlite"))
        let recorder = LogRecorder()
        #expect(try AccessStore.openReadOnly(directory: directory.path, logger: recorder.logger) == nil)
        #expect(recorder.entries(at: .warning).count == 1)
        #expect(try fileSize(directory.appending("access.sqlite")) == 0)
    }

    @Test("a read-only store reads what a writer on the same directory writes, while it writes")
    func readerBesideWriter() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let writer = try AccessStore(directory: directory.path, logger: logger)
        let session = try writer.beginSession(at: at(0), maxUnobservedGap: 60)
        try writer.recordAccesses(["/v/a": at(1)], source: .inotify)
        try writer.markObserved(["/v/a"], since: at(0))
        let reader = try #require(try AccessStore.openReadOnly(directory: directory.path, logger: logger))
        #expect(try reader.accessRecords(now: at(30), maxUnobservedGap: 60)["/v/a"] == AccessRecord(lastAccess: at(1), source: .inotify, observedSince: at(0)))

        // Writer and reader at once, on two threads: the reader sees every
        // volume's clock only move forwards and never an error.
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            do {
                if worker == 0 {
                    for round in 1...200 {
                        var batch: [String: Date] = [:]
                        for index in 0..<50 { batch["/v/\(index)"] = at(round) }
                        try writer.recordAccesses(batch, source: .inotify)
                        try writer.heartbeat(session: session, at: at(round))
                    }
                } else {
                    var seen: [String: Date] = [:]
                    for _ in 0..<200 {
                        for (path, record) in try reader.accessRecords(now: at(200), maxUnobservedGap: 600) {
                            if let before = seen[path], record.lastAccess < before {
                                failures.withLock { $0.append("\(path) went back from \(before) to \(record.lastAccess)") }
                            }
                            seen[path] = record.lastAccess
                        }
                    }
                }
            } catch {
                failures.withLock { $0.append("worker \(worker): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let records = try reader.accessRecords(now: at(200), maxUnobservedGap: 60)
        #expect(records.count == 51)
        #expect(records["/v/7"]?.lastAccess == at(200))

        // A second writer instance opened meanwhile sees the same database.
        let other = try AccessStore(directory: directory.path, logger: logger)
        #expect(try other.statistics().volumes == 51)
        #expect(other.replacedCorruptDatabase == nil)
    }

    @Test(
        "another process reads while this one writes, and writes while this one reads",
        .enabled(if: sqliteShellAvailable, "needs \(sqliteShell)")
    )
    func otherProcess() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let writer = try AccessStore(directory: directory.path, logger: logger)
        try writer.recordAccesses(["/v/a": at(1)], source: .inotify)

        // A read-only child while our writer holds the database open.
        let read = try ChildProcess.run(sqliteShell, ["-readonly", writer.path, "SELECT source, CAST(lastAccess AS INTEGER) FROM volume WHERE path = '/v/a'"])
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "inotify|\(Int(at(1).timeIntervalSince1970))")

        // A writing child while our read-only store is open: we see its write.
        let reader = try #require(try AccessStore.openReadOnly(directory: directory.path, logger: logger))
        #expect(try reader.lastAccess(of: "/v/a")?.lastAccess == at(1))
        let seconds = Int(at(5).timeIntervalSince1970)
        let write = try ChildProcess.run(sqliteShell, [
            "-cmd", ".timeout 5000", writer.path,
            "UPDATE volume SET lastAccess = \(seconds), source = 'store' WHERE path = '/v/a'",
        ])
        #expect(write.status == 0, "\(write.stderr)")
        #expect(try reader.lastAccess(of: "/v/a") == AccessRecord(lastAccess: at(5), source: .store))
        #expect(try writer.lastAccess(of: "/v/a")?.lastAccess == at(5))
    }
}
