import Foundation
import Logging
import ReaperCore
import Testing

@testable import AccessStore

@Suite("AccessStore volumes")
struct VolumeTests {
    let logger = Logger(label: "access-store-tests")

    @Test("a stored time never moves backwards; the newer value brings its source")
    func maxMerge() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let clock = TestClock(at(5))
        let store = try AccessStore(directory: directory.path, logger: logger, clock: clock.function)

        try store.recordAccesses(["/v/a": at(100), "/v/b": at(50)], source: .inotify)
        try store.recordAccesses(["/v/a": at(40)], source: .store)
        try store.recordAccesses(["/v/b": at(60)], source: .mtime)
        try store.recordAccesses(["/v/a": at(100)], source: .mtime)  // a tie keeps the stored source

        let records = try store.accessRecords(now: at(200), maxUnobservedGap: 60)
        #expect(records["/v/a"] == AccessRecord(lastAccess: at(100), source: .inotify))
        #expect(records["/v/b"] == AccessRecord(lastAccess: at(60), source: .mtime))

        clock.set(at(999))
        try store.recordAccesses(["/v/a": at(150)], source: .inotify)
        let volume = try #require(try store.storedVolumes(now: at(200), maxUnobservedGap: 60)["/v/a"])
        #expect(volume.firstSeen == at(5), "firstSeen is set on insert only")
        #expect(volume.lastAccess == at(150))
        #expect(try store.lastAccess(of: "/v/a") == AccessRecord(lastAccess: at(150), source: .inotify))
        #expect(try store.lastAccess(of: "/v/unknown") == nil)
    }

    @Test("records survive closing and reopening the store")
    func persistence() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        do {
            let store = try AccessStore(directory: directory.path, logger: logger)
            _ = try store.beginSession(at: at(5), maxUnobservedGap: 60)
            try store.recordAccesses(["/v/a": at(10), "/v/b": at(20)], source: .inotify)
            try store.markObserved(["/v/a"], since: at(5))
            try store.close()
            #expect(throws: AccessStoreError.self) { try store.recordAccesses(["/v/c": at(1)], source: .inotify) }
        }
        let reopened = try AccessStore(directory: directory.path, logger: logger)
        #expect(reopened.replacedCorruptDatabase == nil)
        let records = try reopened.accessRecords(now: at(20), maxUnobservedGap: 60)
        #expect(records == [
            "/v/a": AccessRecord(lastAccess: at(10), source: .inotify, observedSince: at(5)),
            "/v/b": AccessRecord(lastAccess: at(20), source: .inotify),
        ])
    }

    @Test("the state directory is created with mode 0700")
    func createsDirectory() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let state = directory.appending("state/nested")
        let store = try AccessStore(directory: state, logger: logger)
        try store.recordAccesses(["/v/a": at(1)], source: .inotify)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: state)[.posixPermissions] as? NSNumber)
        #expect(mode.intValue & 0o777 == 0o700)
        #expect(FileManager.default.fileExists(atPath: state + "/access.sqlite"))
    }

    @Test("a path that is no directory is refused with a clear error")
    func directoryIsAFile() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let file = directory.appending("state")
        try writeBytes([1], to: file)
        let error = try #require(throws: AccessStoreError.self) { try AccessStore(directory: file, logger: logger) }
        #expect(error.code == .cannotCreateDirectory)
        #expect(error.path == file)
        #expect(error.description.hasPrefix(file + ": "))
    }

    @Test("a deleted volume is forgotten")
    func forget() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        try store.recordAccesses(["/v/a": at(10), "/v/b": at(20)], source: .inotify)
        try store.forget(["/v/a", "/v/never-known"])
        #expect(Set(try store.accessRecords(now: at(30), maxUnobservedGap: 60).keys) == ["/v/b"])
        #expect(try store.lastAccess(of: "/v/a") == nil)
        #expect(try store.statistics().volumes == 1)
    }

    @Test("reaped volumes are history: not returned, not forgotten, revived only by a later access")
    func reaped() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        try store.recordAccesses(["/v/a": at(10), "/v/b": at(20)], source: .inotify)
        try store.markObserved(["/v/a"], since: at(1))
        try store.markReaped(path: "/v/a", at: at(100), bytesFreed: 4096)

        #expect(Set(try store.accessRecords(now: at(200), maxUnobservedGap: 60).keys) == ["/v/b"])
        #expect(try store.lastAccess(of: "/v/a") == nil)
        try store.forget(["/v/a"])  // the watcher sees the deletion
        try store.recordAccesses(["/v/a": at(99)], source: .inotify)  // events of the deletion itself
        var statistics = try store.statistics()
        #expect(statistics.volumes == 1)
        #expect(statistics.reapedVolumes == 1)
        #expect(statistics.bytesFreed == 4096)
        #expect(try store.accessRecords(now: at(200), maxUnobservedGap: 60)["/v/a"] == nil)

        // The kubelet recreates the directory later: a new life.
        try store.recordAccesses(["/v/a": at(150)], source: .inotify)
        #expect(try store.lastAccess(of: "/v/a") == AccessRecord(lastAccess: at(150), source: .inotify))
        statistics = try store.statistics()
        #expect(statistics.volumes == 2)
        #expect(statistics.reapedVolumes == 0)

        try store.markReaped(path: "/v/b", at: at(300), bytesFreed: 1)
        #expect(try store.pruneReaped(before: at(301)) == 1)
        #expect(try store.statistics().reapedVolumes == 0)
    }

    @Test("observation: set where unset, kept while unbroken; observed-only volumes carry no access")
    func markObserved() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        _ = try store.beginSession(at: at(0), maxUnobservedGap: 60)
        try store.recordAccesses(["/v/a": at(10)], source: .inotify)
        try store.markObserved(["/v/a", "/v/quiet"], since: at(5))
        try store.markObserved(["/v/a", "/v/quiet"], since: at(50))  // later marks keep the start

        let records = try store.accessRecords(now: at(55), maxUnobservedGap: 60)
        #expect(records == ["/v/a": AccessRecord(lastAccess: at(10), source: .inotify, observedSince: at(5))])
        let volumes = try store.storedVolumes(now: at(55), maxUnobservedGap: 60)
        #expect(volumes["/v/quiet"]?.observedSince == at(5))
        #expect(volumes["/v/quiet"]?.lastAccess == nil)
        #expect(volumes["/v/quiet"]?.accessRecord == nil)
        #expect(try store.statistics().observedVolumes == 2)
    }

    @Test("a batch of 10,000 volumes is recorded in one go")
    func largeBatch() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        var batch: [String: Date] = [:]
        for index in 0..<10_000 {
            batch["/var/lib/kubelet/pods/\(index / 10)/volumes/kubernetes.io~empty-dir/v\(index % 10)"] = at(index)
        }
        try store.recordAccesses(batch, source: .inotify)
        try store.markObserved(Array(batch.keys), since: at(0))
        try store.recordAccesses(batch.mapValues { $0.addingTimeInterval(1) }, source: .inotify)
        let records = try store.accessRecords(now: at(20_000), maxUnobservedGap: 60)
        #expect(records.count == 10_000)
        #expect(records["/var/lib/kubelet/pods/999/volumes/kubernetes.io~empty-dir/v9"]?.lastAccess == at(10_000))
        #expect(try store.statistics().volumes == 10_000)
    }

    @Test("a read-only store refuses writes")
    func readOnlyRefusesWrites() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let writer = try AccessStore(directory: directory.path, logger: logger)
        try writer.recordAccesses(["/v/a": at(1)], source: .inotify)
        let reader = try #require(try AccessStore.openReadOnly(directory: directory.path, logger: logger))
        #expect(reader.isReadOnly)
        let error = try #require(throws: AccessStoreError.self) { try reader.recordAccesses(["/v/a": at(2)], source: .inotify) }
        #expect(error.code == .readOnly)
        #expect(throws: AccessStoreError.self) { try reader.beginSession(at: at(3), maxUnobservedGap: 1) }
        #expect(try reader.lastAccess(of: "/v/a")?.lastAccess == at(1))
    }
}
