import Foundation
import ReaperCore
import Testing

/// Design §4.1, §4.2 and §5.7: last access, the annotation, observation.
@Suite("Reconciler: access rules")
struct AccessRuleTests {
    let uid = Fixture.uid(1)
    var path: String { Fixture.volumePath(uid, .emptyDir, "scratch") }

    /// A finished pod whose containers stopped long ago, so only the tested signal can be recent.
    func node(scan: VolumeScan = Fixture.scan(), finishedAt: Date? = Fixture.ago(5 * 3600), annotations: [String: String] = [:]) -> NodeFixture {
        NodeFixture(pods: [Fixture.pod(uid, annotations: annotations, finishedAt: finishedAt)], scan: scan)
    }

    // MARK: recent-access

    @Test("a recent mtime keeps: recent-access from mtime")
    func recentMtime() throws {
        let verdict = try node(scan: Fixture.scan(idle: 5 * 60)).verdict()
        expect(verdict, .keep, [.recentAccess])
        #expect(verdict.lastAccessSource == .mtime)
        #expect(verdict.lastAccess == Fixture.ago(5 * 60))
        #expect(verdict.idleSeconds == 300)
    }

    @Test("a recent access record keeps though the mtimes are old", arguments: [LastAccessSource.inotify, .store])
    func recentRecord(source: LastAccessSource) throws {
        var node = node()
        node.access[path] = AccessRecord(lastAccess: Fixture.ago(10 * 60), source: source)
        let verdict = try node.verdict()
        expect(verdict, .keep, [.recentAccess])
        #expect(verdict.lastAccessSource == source)
        #expect(verdict.idleSeconds == 600)
    }

    @Test("an access record for another volume does not count")
    func recordForOtherPath() throws {
        var node = node()
        node.access[path + "-other"] = AccessRecord(lastAccess: Fixture.ago(10), source: .inotify)
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("a container that finished recently keeps, whatever the mtimes: recent-access from finishedAt")
    func recentFinish() throws {
        let verdict = try node(finishedAt: Fixture.ago(10 * 60)).verdict()
        expect(verdict, .keep, [.recentAccess])
        #expect(verdict.lastAccessSource == .finished)
    }

    @Test("idle.after is the boundary: exactly idle.after ago is idle, a second less is not")
    func idleBoundary() throws {
        expect(try node(scan: Fixture.scan(idle: 30 * 60)).verdict(), .reap, [.podTerminated, .idle])
        expect(try node(scan: Fixture.scan(idle: 30 * 60 - 1)).verdict(), .keep, [.recentAccess])
        var longer = node(scan: Fixture.scan(idle: 50 * 60))
        longer.policy.idle.after = 3600
        expect(try longer.verdict(), .keep, [.recentAccess])
    }

    // MARK: Which signal is the last access

    struct Signals: Sendable, CustomTestStringConvertible {
        var expected: LastAccessSource
        var mtime: TimeInterval = 4 * 3600
        var ctime: TimeInterval = 4 * 3600
        var atime: TimeInterval = 4 * 3600
        var record: (TimeInterval, LastAccessSource)?
        var finished: TimeInterval = 4 * 3600
        var timestamps: [TimestampKind] = [.mtime]
        var testDescription: String { "newest is \(expected)" }
    }

    @Test("lastAccessSource names the newest signal", arguments: [
        Signals(expected: .mtime, mtime: 3600),
        Signals(expected: .ctime, mtime: 3 * 3600, ctime: 3600, timestamps: [.mtime, .ctime]),
        Signals(expected: .mtime, mtime: 3 * 3600, ctime: 3600, timestamps: [.mtime]),  // ctime not listed: ignored
        Signals(expected: .atime, atime: 3600, timestamps: [.mtime, .atime]),
        Signals(expected: .inotify, record: (3600, .inotify)),
        Signals(expected: .store, record: (3600, .store)),
        Signals(expected: .finished, mtime: 3 * 3600, record: (2 * 3600, .store), finished: 3600),
        Signals(expected: .mtime, mtime: 3600, record: (2 * 3600, .inotify), finished: 3 * 3600),
    ])
    func newestSignalWins(signals: Signals) throws {
        var scan = Fixture.scan()
        scan.newestModification = Fixture.ago(signals.mtime)
        scan.newestChange = Fixture.ago(signals.ctime)
        scan.newestAccess = Fixture.ago(signals.atime)
        var node = node(scan: scan, finishedAt: Fixture.ago(signals.finished))
        node.policy.idle.timestamps = signals.timestamps
        if let (age, source) = signals.record {
            node.access[path] = AccessRecord(lastAccess: Fixture.ago(age), source: source)
        }
        let verdict = try node.verdict()
        #expect(verdict.lastAccessSource == signals.expected)
        let listed = signals.timestamps.map { kind in
            switch kind {
            case .mtime: signals.mtime
            case .ctime: signals.ctime
            case .atime: signals.atime
            }
        }
        let newest = (listed + [signals.finished, signals.record?.0 ?? .infinity]).min()!
        #expect(verdict.lastAccess == Fixture.ago(newest))
        #expect(verdict.idleSeconds == Int(newest))
    }

    @Test("finishedAt counts only for a terminated pod")
    func finishedAtOnlyWhenTerminated() throws {
        // A Running pod's document with a stale finishedAt (a restarted container) is not a last access.
        let pod = Fixture.pod(uid, phase: "Running", finishedAt: Fixture.ago(60))
        let verdict = try NodeFixture(pods: [pod]).verdict()
        #expect(verdict.lastAccessSource == .mtime)
        expect(verdict, .keep, [.podRunning])
    }

    // MARK: changed-during-scan

    @Test("an entry that vanished during the walk is activity: changed-during-scan")
    func vanished() throws {
        let verdict = try node(scan: Fixture.scan(vanished: true)).verdict()
        expect(verdict, .keep, [.changedDuringScan, .recentAccess])
        #expect(verdict.lastAccess == Fixture.now)
    }

    // MARK: The last-accessed annotation (design §4.2)

    static let annotationKey = "volume.alpha.kubernetes.io/last-accessed-at"

    @Test("an annotation younger than annotation.idleAfter keeps: annotation-recent", arguments: [
        RFC3339.format(Fixture.ago(5 * 60)),
        RFC3339.format(Fixture.ago(44 * 60)),
        "2026-11-18T11:00:00.123456Z",  // fractional seconds: now is 2026-11-18T11:06:40Z
        "2026-11-18T12:00:00+01:00",    // an offset: 11:00Z
    ])
    func annotationRecent(value: String) throws {
        expect(try node(annotations: [Self.annotationKey: value]).verdict(), .keep, [.annotationRecent])
    }

    @Test("an annotation older than annotation.idleAfter lets go", arguments: [
        RFC3339.format(Fixture.ago(2 * 3600)), RFC3339.format(Fixture.ago(45 * 60)), "2020-01-01T00:00:00Z",
    ])
    func annotationOld(value: String) throws {
        expect(try node(annotations: [Self.annotationKey: value]).verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("an unparseable annotation keeps: annotation-invalid", arguments: [
        "yesterday-ish", "", "2026-11-18", "2026-11-18 08:00:00", "1795000000", "2026-13-45T99:00:00Z",
    ])
    func annotationInvalid(value: String) throws {
        expect(try node(annotations: [Self.annotationKey: value]).verdict(), .keep, [.annotationInvalid])
    }

    @Test("a missing annotation: fine by default, annotation-missing when annotation.required")
    func annotationMissing() throws {
        var node = node()
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
        node.policy.annotation.required = true
        expect(try node.verdict(), .keep, [.annotationMissing])
        node.pods = [Fixture.pod(uid, annotations: [Self.annotationKey: RFC3339.format(Fixture.ago(3 * 3600))])]
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("annotation.key and annotation.idleAfter come from the policy")
    func annotationPolicy() throws {
        var node = node(annotations: ["example.com/used": RFC3339.format(Fixture.ago(3600)), Self.annotationKey: "garbage"])
        node.policy.annotation.key = "example.com/used"
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
        node.policy.annotation.idleAfter = 2 * 3600
        expect(try node.verdict(), .keep, [.annotationRecent])
    }

    // MARK: idle.requireObservation (design §5.7)

    @Test("requireObservation: without an observation record nothing goes")
    func notObservedWithoutRecord() throws {
        var node = node()
        node.policy.idle.requireObservation = true
        expect(try node.verdict(), .keep, [.notObservedLongEnough])
        node.access[path] = AccessRecord(lastAccess: Fixture.ago(3 * 3600), source: .store, observedSince: nil)
        expect(try node.verdict(), .keep, [.notObservedLongEnough])
    }

    @Test("requireObservation: watched for less than idle.after keeps, for all of it lets go")
    func observedSince() throws {
        var node = node()
        node.policy.idle.requireObservation = true
        node.access[path] = AccessRecord(lastAccess: Fixture.ago(3 * 3600), source: .inotify, observedSince: Fixture.ago(10 * 60))
        expect(try node.verdict(), .keep, [.notObservedLongEnough])
        node.access[path]?.observedSince = Fixture.ago(31 * 60)
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
        // Without requireObservation a short observation does not matter.
        node.access[path]?.observedSince = Fixture.ago(60)
        node.policy.idle.requireObservation = false
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
    }
}
