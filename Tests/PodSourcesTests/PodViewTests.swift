import Foundation
import Logging
import NIOCore
@testable import PodSources
import ReaperCore
import Testing

/// The freshness rules of issue 8 on the view a network source keeps: only a
/// LIST or a BOOKMARK vouches for the whole view, a failure unsyncs it but
/// keeps the pods it knows.
@Suite("PodView: freshness and sync")
struct PodViewTests {
    static let logger = Logger(label: "pod-view-tests")

    static func pod(_ uid: String, phase: String) -> Pod {
        Pod(uid: uid, name: "pod-\(uid.prefix(4))", namespace: "batch", phase: phase, annotations: [:], owners: [], lastContainerFinishedAt: nil, source: "test")
    }

    @Test("never listed: empty, unsynced, no refresh time, no fingerprint")
    func initial() {
        let view = PodView(kind: .apiserver, endpoint: "https://server", logger: Self.logger)
        let snapshot = view.snapshot()
        #expect(snapshot.pods.isEmpty && !snapshot.synced && snapshot.refreshedAt == nil && snapshot.fingerprint == nil)
        #expect(!snapshot.isComplete)
        #expect(view.status().state == .syncing)
    }

    @Test("a LIST vouches as of when it was sent; an event changes pods, never the refresh time")
    func listThenEvent() {
        let view = PodView(kind: .apiserver, endpoint: "https://server", logger: Self.logger)
        let sent = Date(timeIntervalSince1970: 1_000_000)
        view.replace(with: [Self.pod("a", phase: "Running")], resourceVersion: "10", takenAt: sent)
        var snapshot = view.snapshot()
        #expect(snapshot.refreshedAt == sent && snapshot.synced && snapshot.isComplete && snapshot.resourceVersion == "10")
        let listed = snapshot.fingerprint
        view.apply(event: "MODIFIED", pod: Self.pod("a", phase: "Succeeded"), resourceVersion: "11")
        view.apply(event: "ADDED", pod: Self.pod("b", phase: "Pending"), resourceVersion: "12")
        snapshot = view.snapshot()
        #expect(snapshot.pods.map(\.phase) == ["Succeeded", "Pending"])
        #expect(snapshot.refreshedAt == sent, "a single event must not advance refreshedAt")
        #expect(snapshot.resourceVersion == "12")
        view.apply(event: "DELETED", pod: Self.pod("a", phase: "Succeeded"), resourceVersion: "13")
        #expect(view.snapshot().pods.map(\.uid) == ["b"])
        #expect(view.snapshot().refreshedAt == sent)
        #expect(view.snapshot().fingerprint != nil && listed != nil)
    }

    @Test("a BOOKMARK vouches as of its arrival less the documented margin, and is another write")
    func bookmark() {
        let view = PodView(kind: .apiserver, endpoint: "https://server", logger: Self.logger)
        let sent = Date(timeIntervalSince1970: 1_000_000)
        view.replace(with: [Self.pod("a", phase: "Running")], resourceVersion: "10", takenAt: sent)
        let before = view.snapshot().fingerprint
        let arrived = sent.addingTimeInterval(60)
        view.bookmark(resourceVersion: "20", receivedAt: arrived)
        let snapshot = view.snapshot()
        #expect(snapshot.refreshedAt == arrived.addingTimeInterval(-PodSourceSettings.defaultBookmarkMargin))
        #expect(snapshot.resourceVersion == "20")
        #expect(snapshot.fingerprint != before)
        // An older bookmark never moves the refresh time back.
        view.bookmark(resourceVersion: "21", receivedAt: sent)
        #expect(view.snapshot().refreshedAt == arrived.addingTimeInterval(-PodSourceSettings.defaultBookmarkMargin))
    }

    @Test("a failure keeps the pods, unsyncs the view (no orphan vouched), and a bookmark cannot resync it; a LIST does")
    func failure() {
        let view = PodView(kind: .apiserver, endpoint: "https://server", logger: Self.logger)
        let sent = Date(timeIntervalSince1970: 1_000_000)
        view.replace(with: [Self.pod("a", phase: "Succeeded")], resourceVersion: "10", takenAt: sent)
        view.fail(PodSourceError(.unreachable, "https://server/api/v1/pods: watch cut in the middle of an event"))
        var snapshot = view.snapshot()
        #expect(snapshot.pods.map(\.uid) == ["a"], "the view stays intact")
        #expect(!snapshot.synced && !snapshot.isComplete && snapshot.fingerprint == nil)
        #expect(snapshot.errors.map(\.message) == ["https://server/api/v1/pods: watch cut in the middle of an event"])
        view.bookmark(resourceVersion: "30", receivedAt: sent.addingTimeInterval(100))
        #expect(view.snapshot().refreshedAt == sent)
        let status = view.status()
        #expect(status.state == .failing && status.problemKind == "unreachable" && status.failures == ["unreachable": 1])
        view.replace(with: [Self.pod("a", phase: "Succeeded")], resourceVersion: "40", takenAt: sent.addingTimeInterval(200))
        snapshot = view.snapshot()
        #expect(snapshot.synced && snapshot.isComplete && snapshot.errors.isEmpty)
        #expect(view.status().state == .synced)
    }

    @Test("a failure that lost no event (a cut, an outage) is synced again by the resumed watch's BOOKMARK, with a new fingerprint; one that lost an event (a 410) is not")
    func resumable() {
        let view = PodView(kind: .apiserver, endpoint: "https://server", logger: Self.logger)
        let sent = Date(timeIntervalSince1970: 1_000_000)
        view.replace(with: [Self.pod("a", phase: "Running")], resourceVersion: "10", takenAt: sent)
        let listed = view.snapshot().fingerprint
        view.fail(PodSourceError(.unreachable, "https://server/api/v1/pods: watch cut: connection reset"), resumable: true)
        #expect(!view.snapshot().synced && view.snapshot().fingerprint == nil && view.canResume)
        view.apply(event: "DELETED", pod: Self.pod("a", phase: "Running"), resourceVersion: "12")
        #expect(!view.snapshot().synced, "an event is not the server's word on the whole view")
        view.bookmark(resourceVersion: "15", receivedAt: sent.addingTimeInterval(60))
        let resynced = view.snapshot()
        #expect(resynced.synced && resynced.isComplete && resynced.pods.isEmpty && resynced.resourceVersion == "15")
        #expect(resynced.fingerprint != nil && resynced.fingerprint != listed)
        #expect(resynced.refreshedAt == sent.addingTimeInterval(60 - PodSourceSettings.defaultBookmarkMargin))
        #expect(view.status().state == .synced)

        view.fail(PodSourceError(.expired, "watch ERROR 410"), resumable: false)
        #expect(!view.canResume)
        view.bookmark(resourceVersion: "20", receivedAt: sent.addingTimeInterval(120))
        #expect(!view.snapshot().synced, "after a 410 only a new list vouches")
    }

    @Test("an event that changes nothing the reconciler reads starts no reconcile; one that does, and a DELETED, do")
    func changes() async {
        let view = PodView(kind: .apiserver, endpoint: "https://server", logger: Self.logger)
        var changes = view.changes.makeAsyncIterator()
        view.replace(with: [Self.pod("a", phase: "Running")], resourceVersion: "10", takenAt: Date())
        #expect(await changes.next() != nil)
        view.apply(event: "MODIFIED", pod: Self.pod("a", phase: "Running"), resourceVersion: "11")
        view.bookmark(resourceVersion: "12", receivedAt: Date())
        view.apply(event: "MODIFIED", pod: Self.pod("a", phase: "Succeeded"), resourceVersion: "13")
        #expect(await changes.next() != nil)
        view.apply(event: "DELETED", pod: Self.pod("a", phase: "Succeeded"), resourceVersion: "14")
        #expect(await changes.next() != nil)
        view.apply(event: "MODIFIED", pod: Self.pod("b", phase: "Running"), resourceVersion: "15")
        #expect(await changes.next() != nil)
        view.apply(event: "MODIFIED", pod: Self.pod("b", phase: "Running"), resourceVersion: "16")
        view.finish()
        #expect(await changes.next() == nil, "the unchanged MODIFIED reported a change")
        #expect(view.status().events == 6)
    }

    /// The changes left on `view`'s stream once it is finished (0 or 1: coalesced).
    static func pendingChanges(_ view: PodView) async -> Int {
        view.finish()
        var count = 0
        for await _ in view.changes { count += 1 }
        return count
    }

    /// A listed view with its list's change taken, and the daemon's annotation keys.
    static func listedView(_ pods: [Pod], keys: Set<String>? = Policy.defaults.annotationKeysRead) async -> PodView {
        let view = PodView(kind: .apiserver, endpoint: "https://server", logger: Self.logger)
        if let keys { view.setAnnotationKeysRead(keys) }
        var changes = view.changes.makeAsyncIterator()
        view.replace(with: pods, resourceVersion: "10", takenAt: Date())
        _ = await changes.next()
        return view
    }

    @Test("a MODIFIED that changes only an annotation the reconciler does not read keeps the new document, starts no reconcile")
    func unreadAnnotation() async {
        let view = await Self.listedView([Self.pod("a", phase: "Running")])
        var changed = Self.pod("a", phase: "Running")
        changed.annotations["example.com/build-sequence"] = "41"
        view.apply(event: "MODIFIED", pod: changed, resourceVersion: "11")
        #expect(view.snapshot().pods.first?.annotations == ["example.com/build-sequence": "41"], "the view keeps the newest document")
        #expect(view.snapshot().resourceVersion == "11")
        view.replace(with: [changed], resourceVersion: "12", takenAt: Date())
        #expect(await Self.pendingChanges(view) == 0, "a change the reconciler cannot see started a reconcile")
    }

    @Test("a change of any field the reconciler reads starts a reconcile, by event and by list",
          arguments: ["phase", "owner", "last-accessed annotation", "keep annotation", "config.mirror", "finishedAt", "name", "namespace", "uid"])
    func readField(_ field: String) async {
        let before = Self.pod("a", phase: "Running")
        var after = before
        switch field {
        case "phase": after.phase = "Succeeded"
        case "owner": after.owners = [OwnerReference(kind: "DaemonSet", name: "agent")]
        case "last-accessed annotation": after.annotations[Policy.defaults.annotation.key] = "2026-01-01T00:00:00Z"
        case "keep annotation": after.annotations[Policy.defaults.pods.protectAnnotation] = "true"
        case "config.mirror": after.annotations[Pod.configMirrorAnnotation] = "0123abcd"
        case "finishedAt": after.lastContainerFinishedAt = Date(timeIntervalSince1970: 1_000_000)
        case "name": after.name = "renamed"
        case "namespace": after.namespace = "other"
        default: after.uid = "b"
        }
        let byEvent = await Self.listedView([before])
        byEvent.apply(event: "MODIFIED", pod: after, resourceVersion: "11")
        #expect(await Self.pendingChanges(byEvent) == 1, "a change of \(field) by event started no reconcile")
        let byList = await Self.listedView([before])
        byList.replace(with: [after], resourceVersion: "11", takenAt: Date())
        #expect(await Self.pendingChanges(byList) == 1, "a change of \(field) by a list started no reconcile")
    }

    @Test("until the daemon names the annotations it reads, and after a reload names others, a change of those annotations starts a reconcile")
    func annotationKeysFollowThePolicy() async {
        var changed = Self.pod("a", phase: "Running")
        changed.annotations["example.com/idle-since"] = "2026-01-01T00:00:00Z"
        let unset = await Self.listedView([Self.pod("a", phase: "Running")], keys: nil)
        unset.apply(event: "MODIFIED", pod: changed, resourceVersion: "11")
        #expect(await Self.pendingChanges(unset) == 1)

        let reloaded = await Self.listedView([Self.pod("a", phase: "Running")])
        var policy = Policy.defaults
        policy.annotation.key = "example.com/idle-since"
        reloaded.setAnnotationKeysRead(policy.annotationKeysRead)
        reloaded.apply(event: "MODIFIED", pod: changed, resourceVersion: "11")
        #expect(await Self.pendingChanges(reloaded) == 1)
    }

    @Test("duplicate UIDs: every document kept and the view vouches for no orphan; ADDED/MODIFIED replace that UID's documents, DELETED removes them")
    func duplicates() {
        let view = PodView(kind: .apiserver, endpoint: "https://server", logger: Self.logger)
        var protected = Self.pod("a", phase: "Running")
        protected.annotations["volume-reaper.io/keep"] = "true"
        view.replace(with: [Self.pod("a", phase: "Succeeded"), protected, Self.pod("b", phase: "Running")], resourceVersion: "10", takenAt: Date())
        var snapshot = view.snapshot()
        #expect(snapshot.pods(matching: "a", kind: .uid).count == 2)
        #expect(!snapshot.isComplete && snapshot.errors.count == 1)
        #expect(view.status().failures["duplicate-uid"] == 1)
        // The same answer again is not news: counted and logged once per answer that brings a new duplicate.
        view.replace(with: [Self.pod("a", phase: "Succeeded"), protected, Self.pod("b", phase: "Running")], resourceVersion: "10", takenAt: Date())
        #expect(view.status().failures["duplicate-uid"] == 1)
        view.apply(event: "MODIFIED", pod: Self.pod("a", phase: "Failed"), resourceVersion: "11")
        snapshot = view.snapshot()
        #expect(snapshot.pods(matching: "a", kind: .uid).map(\.phase) == ["Failed"])
        #expect(snapshot.isComplete, "\(snapshot.errors)")
        view.replace(with: [Self.pod("a", phase: "Succeeded"), protected], resourceVersion: "12", takenAt: Date())
        view.apply(event: "DELETED", pod: Self.pod("a", phase: "Succeeded"), resourceVersion: "13")
        snapshot = view.snapshot()
        #expect(snapshot.pods(matching: "a", kind: .uid).isEmpty && snapshot.isComplete)
        #expect(view.status().failures["duplicate-uid"] == 2)
    }

    @Test("410 is routine: syncing, not failing")
    func expired() {
        let view = PodView(kind: .apiserver, endpoint: "https://server", logger: Self.logger)
        view.replace(with: [], resourceVersion: "10", takenAt: Date())
        view.fail(PodSourceError(.expired, "watch ERROR 410"))
        #expect(view.status().state == .syncing)
        #expect(!view.snapshot().synced)
    }
}

@Suite("LineSplitter: bounded watch lines")
struct LineSplitterTests {
    func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test("lines across chunks, empty lines dropped, a partial line held")
    func lines() throws {
        var splitter = LineSplitter(maxLineBytes: 100)
        #expect(try splitter.lines(in: buffer("{\"a\":1}\n{\"b\"")).map { String(decoding: $0, as: UTF8.self) } == ["{\"a\":1}"])
        #expect(splitter.hasPartialLine)
        #expect(try splitter.lines(in: buffer(":2}\n\n{\"c\":3}\n")).map { String(decoding: $0, as: UTF8.self) } == ["{\"b\":2}", "{\"c\":3}"])
        #expect(!splitter.hasPartialLine)
    }

    @Test("a line over the limit is an error, in one chunk or across many, and the buffer never grows past it")
    func limit() {
        var splitter = LineSplitter(maxLineBytes: 16)
        #expect(throws: LineSplitter.Overflow.self) { try splitter.lines(in: buffer(String(repeating: "x", count: 17) + "\n")) }
        var streaming = LineSplitter(maxLineBytes: 16)
        #expect(throws: LineSplitter.Overflow.self) {
            for _ in 0..<10 { _ = try streaming.lines(in: buffer("xxxx")) }
        }
    }
}
