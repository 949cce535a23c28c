import Foundation
import Logging
import ReaperCore
import Testing

@testable import AccessStore

@Suite("AccessStore corruption")
struct CorruptionTests {
    let logger = Logger(label: "access-store-tests")

    /// Bytes no SQLite would take for a database (but long enough to look like a file).
    static let garbage: [UInt8] = (0..<16_384).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }

    @Test("a file of garbage is moved aside with its WAL, logged once, and replaced by a store whose clocks start now")
    func garbageFile() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let path = directory.appending("access.sqlite")
        try writeBytes(Self.garbage, to: path)
        try writeBytes(Array(Self.garbage.prefix(4096)), to: path + "-wal")
        let recorder = LogRecorder()
        let clock = TestClock(at(1000))

        let store = try AccessStore(directory: directory.path, logger: recorder.logger, clock: clock.function)

        let movedTo = try #require(store.replacedCorruptDatabase)
        let name = (movedTo as NSString).lastPathComponent
        #expect(name.wholeMatch(of: /access\.sqlite\.corrupt-\d{8}T\d{6}Z/) != nil, "\(name)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: movedTo)) == Data(Self.garbage), "the old file is kept, untouched")
        // Its WAL never meets the new database: moved along (or dropped by SQLite).
        let staleWAL = Data(Self.garbage.prefix(4096))
        #expect((try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) != staleWAL)
        if FileManager.default.fileExists(atPath: movedTo + "-wal") {
            #expect(try Data(contentsOf: URL(fileURLWithPath: movedTo + "-wal")) == staleWAL)
        }
        let errors = recorder.entries(at: .error)
        #expect(errors.count == 1)
        #expect(errors.first?.metadata["path"] == path)
        #expect(errors.first?.metadata["moved_to"] == movedTo)
        #expect(errors.first?.metadata["error"]?.isEmpty == false)

        // The new store works, and nothing in it is older than the replacement.
        #expect(try store.clockFloor() == at(1000))
        try store.recordAccesses(["/v/old": at(500), "/v/new": at(1500)], source: .inotify)
        let records = try store.accessRecords(now: at(2000), maxUnobservedGap: 60, covering: ["/v/old", "/v/new", "/v/unknown"])
        #expect(records["/v/old"] == AccessRecord(lastAccess: at(1000), source: .store))
        #expect(records["/v/new"] == AccessRecord(lastAccess: at(1500), source: .inotify))
        #expect(records["/v/unknown"] == AccessRecord(lastAccess: at(1000), source: .store))
        #expect(try store.lastAccess(of: "/v/elsewhere") == AccessRecord(lastAccess: at(1000), source: .store))
        try store.close()

        // Reopened: healthy, nothing moved again, the floor stays.
        let reopened = try AccessStore(directory: directory.path, logger: recorder.logger, clock: clock.function)
        #expect(reopened.replacedCorruptDatabase == nil)
        #expect(try reopened.clockFloor() == at(1000))
        #expect(recorder.entries(at: .error).count == 1)
    }

    @Test("a truncated database is detected and replaced; a reader skips it without touching it")
    func truncatedDatabase() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let path = directory.appending("access.sqlite")
        do {
            let store = try AccessStore(directory: directory.path, logger: logger)
            var batch: [String: Date] = [:]
            for index in 0..<5_000 { batch["/var/lib/kubelet/pods/p\(index)/volumes/kubernetes.io~empty-dir/data"] = at(index) }
            try store.recordAccesses(batch, source: .inotify)
            try store.close()  // checkpoints: everything is in the main file
        }
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(full.count > 100_000)
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: path))
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }

        let recorder = LogRecorder()
        #expect(try AccessStore.openReadOnly(directory: directory.path, logger: recorder.logger) == nil)
        #expect(recorder.entries(at: .warning).count == 1)
        #expect(try directory.entries().filter { $0.contains("corrupt") }.isEmpty, "a reader never moves anything")

        let store = try AccessStore(directory: directory.path, logger: recorder.logger, clock: { at(9000) })
        let movedTo = try #require(store.replacedCorruptDatabase)
        #expect(try fileSize(movedTo) == full.count / 2)
        #expect(recorder.entries(at: .error).count == 1)
        #expect(try store.statistics().volumes == 0)
        let record = try store.accessRecords(now: at(9001), maxUnobservedGap: 60, covering: ["/var/lib/kubelet/pods/p1/volumes/kubernetes.io~empty-dir/data"])
        #expect(record.values.map(\.lastAccess) == [at(9000)], "a lost store must not make volumes look idle")
    }

    @Test("a second corruption in the same second gets its own name")
    func uniqueNames() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let path = directory.appending("access.sqlite")
        let quiet = LogRecorder().logger
        try writeBytes(Self.garbage, to: path)
        let first = try AccessStore(directory: directory.path, logger: quiet, clock: { at(0) })
        try first.close()
        try writeBytes(Self.garbage, to: path)
        let second = try AccessStore(directory: directory.path, logger: quiet, clock: { at(0) })
        let one = try #require(first.replacedCorruptDatabase)
        let two = try #require(second.replacedCorruptDatabase)
        #expect(one != two)
        #expect(FileManager.default.fileExists(atPath: one))
        #expect(FileManager.default.fileExists(atPath: two))
    }

    @Test("a failure that is no corruption throws and leaves the file where it is")
    func environmentalFailure() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        // The database path is a directory: SQLite cannot open it (CANTOPEN).
        try FileManager.default.createDirectory(atPath: directory.appending("access.sqlite"), withIntermediateDirectories: false)
        let recorder = LogRecorder()
        let error = try #require(throws: AccessStoreError.self) {
            try AccessStore(directory: directory.path, logger: recorder.logger)
        }
        #expect(error.code == .cannotOpen)
        #expect(error.path == directory.appending("access.sqlite"))
        // Nothing moved aside; only the open lock file beside it.
        #expect(try directory.entries() == ["access.lock", "access.sqlite"])
        #expect(recorder.entries.isEmpty)
    }

    @Test("a read-only open of garbage returns nil with a warning and moves nothing")
    func readOnlyGarbage() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let path = directory.appending("access.sqlite")
        try writeBytes(Self.garbage, to: path)
        let recorder = LogRecorder()
        #expect(try AccessStore.openReadOnly(directory: directory.path, logger: recorder.logger) == nil)
        #expect(recorder.entries(at: .warning).count == 1)
        #expect(recorder.entries(at: .warning).first?.metadata["path"] == path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(Self.garbage))
        #expect(try directory.entries().allSatisfy { $0.hasPrefix("access.sqlite") && !$0.contains("corrupt") })
    }
}
