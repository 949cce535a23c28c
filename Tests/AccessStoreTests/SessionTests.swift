import Foundation
import Logging
import ReaperCore
import Testing

@testable import AccessStore

@Suite("AccessStore sessions")
struct SessionTests {
    let logger = Logger(label: "access-store-tests")

    @Test("a restart within maxUnobservedGap keeps observation; a longer gap restarts it")
    func gapLogic() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        let first = try store.beginSession(at: at(0), maxUnobservedGap: 60)
        try store.recordAccesses(["/v/a": at(10)], source: .inotify)
        try store.markObserved(["/v/a", "/v/quiet"], since: at(0))
        try store.heartbeat(session: first, at: at(100))
        try store.endSession(first, at: at(120))

        // Stopped at 120, started again at 180: a gap of exactly 60 keeps it.
        let second = try store.beginSession(at: at(180), maxUnobservedGap: 60)
        #expect(second > first)
        #expect(try store.accessRecords(now: at(180), maxUnobservedGap: 60)["/v/a"]?.observedSince == at(0))
        #expect(try store.storedVolumes(now: at(180), maxUnobservedGap: 60)["/v/quiet"]?.observedSince == at(0))
        try store.endSession(second, at: at(200))

        // Stopped at 200, started at 261: 61 seconds nobody watched.
        _ = try store.beginSession(at: at(261), maxUnobservedGap: 60)
        #expect(try store.accessRecords(now: at(261), maxUnobservedGap: 60)["/v/a"] == AccessRecord(lastAccess: at(10), source: .inotify))
        #expect(try store.storedVolumes(now: at(261), maxUnobservedGap: 60)["/v/quiet"]?.observedSince == nil)
        #expect(try store.lastAccess(of: "/v/a")?.observedSince == nil, "reset in the database, not only in the view")

        // Observation starts again from the new session.
        try store.markObserved(["/v/a"], since: at(261))
        #expect(try store.accessRecords(now: at(300), maxUnobservedGap: 60)["/v/a"]?.observedSince == at(261))
    }

    @Test("the first session ever starts observation from nothing")
    func firstSession() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        try store.recordAccesses(["/v/a": at(10)], source: .inotify)
        try store.markObserved(["/v/a"], since: at(0))
        _ = try store.beginSession(at: at(20), maxUnobservedGap: 3600)
        #expect(try store.lastAccess(of: "/v/a")?.observedSince == nil)
    }

    @Test("no heartbeat for longer than the gap: nobody is watching, observedSince reads as nil")
    func staleHeartbeat() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        // No session at all: no coverage.
        try store.recordAccesses(["/v/a": at(10)], source: .inotify)
        try store.markObserved(["/v/a"], since: at(0))
        #expect(try store.accessRecords(now: at(10), maxUnobservedGap: 60)["/v/a"]?.observedSince == nil)

        let session = try store.beginSession(at: at(0), maxUnobservedGap: 60)
        try store.markObserved(["/v/a"], since: at(0))
        try store.heartbeat(session: session, at: at(40))
        try store.heartbeat(session: session, at: at(30))  // never moves back
        #expect(try store.accessRecords(now: at(100), maxUnobservedGap: 60)["/v/a"]?.observedSince == at(0))
        #expect(try store.accessRecords(now: at(101), maxUnobservedGap: 60)["/v/a"]?.observedSince == nil)
        #expect(try store.storedVolumes(now: at(101), maxUnobservedGap: 60)["/v/a"]?.observedSince == nil)
        #expect(try store.lastAccess(of: "/v/a", now: at(101), maxUnobservedGap: 60)?.observedSince == nil)
        #expect(try store.lastAccess(of: "/v/a")?.observedSince == at(0), "the stored value stays for a daemon that resumes in time")

        // A clean stop counts as the end of coverage too.
        try store.endSession(session, at: at(90))
        #expect(try store.accessRecords(now: at(150), maxUnobservedGap: 60)["/v/a"]?.observedSince == at(0))
        #expect(try store.accessRecords(now: at(151), maxUnobservedGap: 60)["/v/a"]?.observedSince == nil)
        #expect(try store.statistics().lastHeartbeat == at(90))
    }

    @Test("a session that never stopped cleanly raises every clock to the restart")
    func uncleanStop() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let recorder = LogRecorder()
        let store = try AccessStore(directory: directory.path, logger: recorder.logger)
        let crashed = try store.beginSession(at: at(0), maxUnobservedGap: 60)
        try store.recordAccesses(["/v/a": at(10)], source: .inotify)
        try store.markObserved(["/v/a"], since: at(0))
        try store.heartbeat(session: crashed, at: at(50))
        // kill -9: no endSession. Restarted 20 s later.
        _ = try store.beginSession(at: at(70), maxUnobservedGap: 60)

        let records = try store.accessRecords(now: at(80), maxUnobservedGap: 60, covering: ["/v/a", "/v/new"])
        #expect(records["/v/a"] == AccessRecord(lastAccess: at(70), source: .store, observedSince: at(0)))
        #expect(records["/v/new"] == AccessRecord(lastAccess: at(70), source: .store))
        #expect(try store.clockFloor() == at(70))
        #expect(try store.lastAccess(of: "/v/unknown") == AccessRecord(lastAccess: at(70), source: .store))
        let warnings = recorder.entries(at: .warning)
        #expect(warnings.count == 1)
        #expect(warnings.first?.metadata["session"] == "\(crashed)")

        // Later accesses win over the floor again.
        try store.recordAccesses(["/v/a": at(75)], source: .inotify)
        #expect(try store.lastAccess(of: "/v/a")?.source == .inotify)
    }

    @Test("heartbeat and endSession name a session the store holds")
    func unknownSession() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        let error = try #require(throws: AccessStoreError.self) { try store.heartbeat(session: 42, at: at(0)) }
        #expect(error.code == .unknownSession)
        #expect(throws: AccessStoreError.self) { try store.endSession(42, at: at(0)) }
    }

    @Test("only the newest sessions are kept")
    func sessionsPruned() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try AccessStore(directory: directory.path, logger: logger)
        var last: Int64 = 0
        for index in 0..<105 {
            last = try store.beginSession(at: at(index * 10), maxUnobservedGap: 60)
            try store.endSession(last, at: at(index * 10 + 5))
        }
        let statistics = try store.statistics()
        #expect(statistics.sessions == 100)
        #expect(statistics.lastHeartbeat == at(1045))
        #expect(last == 105)
    }
}
