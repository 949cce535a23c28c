import Foundation
import ReaperCore
import Testing

/// Issue 13 holes 3 and 4: a single bad snapshot must never make an orphan,
/// and a refresh time in the future is no refresh time.
@Suite("Reconciler: orphan confirmation, future refresh times")
struct OrphanConfirmationTests {
    let orphan = Fixture.uid(15)
    var orphanPath: String { Fixture.volumePath(orphan, .emptyDir, "scratch") }

    /// One orphan and two running pods, with the default `confirmAfter` (2m).
    func node() -> NodeFixture {
        var node = NodeFixture()
        node.policy.orphans.confirmAfter = Policy.defaults.orphans.confirmAfter
        node.addVolume(uid: orphan)
        for number in [3, 4] {
            node.pods.append(Fixture.pod(Fixture.uid(number), name: "web-\(number)", namespace: "shop", phase: "Running", finishedAt: nil))
            node.addVolume(uid: Fixture.uid(number))
        }
        return node
    }

    func sighting(ago seconds: TimeInterval, write: String = "write-1") -> OrphanObservation {
        Fixture.sighting(orphan, ago: seconds, write: write)
    }

    @Test("the default confirmAfter is 2m")
    func defaultValue() {
        #expect(Policy.defaults.orphans.confirmAfter == 120)
    }

    @Test("first sighting: kept as orphan-unconfirmed, still shown as an orphan; its pod directory stays")
    func firstSighting() throws {
        let node = node()
        let verdict = try node.verdict(orphanPath)
        expect(verdict, .keep, [.orphanUnconfirmed])
        #expect(verdict.orphan)
        #expect(node.plan().orphanPodDirectories.isEmpty)
    }

    @Test("missing from another write confirmAfter ago: reaped")
    func confirmed() throws {
        var node = node()
        node.orphanObservations = [orphan: sighting(ago: 120)]
        expect(try node.verdict(orphanPath), .reap, [.orphan, .idle])
        #expect(node.plan().orphanPodDirectories == ["\(Fixture.kubeletRoot)/pods/\(orphan)"])
    }

    @Test("missing from the same write twice: unconfirmed, however long ago (a truncated file left alone)")
    func sameWrite() throws {
        var node = node()
        node.orphanObservations = [orphan: sighting(ago: 86400, write: "write-2")]
        expect(try node.verdict(orphanPath), .keep, [.orphanUnconfirmed])
        node.manifestsFingerprint = nil
        node.orphanObservations = [orphan: sighting(ago: 86400)]
        expect(try node.verdict(orphanPath), .keep, [.orphanUnconfirmed])
    }

    @Test("missing from another write less than confirmAfter ago: unconfirmed")
    func tooSoon() throws {
        var node = node()
        node.orphanObservations = [orphan: sighting(ago: 119)]
        expect(try node.verdict(orphanPath), .keep, [.orphanUnconfirmed])
        node.policy.orphans.confirmAfter = 60
        expect(try node.verdict(orphanPath), .reap, [.orphan, .idle])
    }

    @Test("confirmAfter 0 trusts one snapshot")
    func off() throws {
        var node = node()
        node.policy.orphans.confirmAfter = 0
        expect(try node.verdict(orphanPath), .reap, [.orphan, .idle])
    }

    @Test("an untrusted snapshot says what is wrong with it, not orphan-unconfirmed")
    func snapshotReasonsFirst() throws {
        var node = node()
        node.manifestErrors = [ManifestError(file: "x.yaml", message: "cut short")]
        expect(try node.verdict(orphanPath), .keep, [.manifestsIncomplete])
    }

    // MARK: What a pass records

    @Test("a trusted snapshot records a sighting of each missing UID directory, once")
    func recordsSightings() {
        var node = node()
        var update = OrphanConfirmation.update(after: node.input)
        #expect(update.missing == [Fixture.sighting(orphan, ago: 0, write: "write-2")])
        #expect(update.forget.isEmpty)
        // Already sighted: the earlier sighting stands.
        node.orphanObservations = [orphan: sighting(ago: 30)]
        update = OrphanConfirmation.update(after: node.input)
        #expect(update.isEmpty)
    }

    @Test("a snapshot that lists the pod again, or a directory gone, forgets the sighting")
    func forgets() {
        var node = node()
        let gone = Fixture.uid(77)
        node.orphanObservations = [orphan: sighting(ago: 30), gone: Fixture.sighting(gone, ago: 30, write: "w")]
        node.pods.append(Fixture.pod(orphan, phase: "Running"))
        // Even an incomplete snapshot that lists it: the pod exists.
        node.manifestErrors = [ManifestError(file: "x.yaml", message: "bad")]
        let update = OrphanConfirmation.update(after: node.input)
        #expect(update.missing.isEmpty)
        #expect(update.forget == [orphan, gone].sorted())
    }

    @Test("untrusted snapshots record nothing", arguments: ["incomplete", "stale", "future", "no fingerprint", "young directory", "static pod"])
    func untrustedRecordsNothing(_ flaw: String) {
        var node = node()
        switch flaw {
        case "incomplete": node.manifestErrors = [ManifestError(file: "x.yaml", message: "bad")]
        case "stale": node.manifestsRefreshedAt = Fixture.ago(3600)
        case "future": node.manifestsRefreshedAt = Fixture.now.addingTimeInterval(86400)
        case "no fingerprint": node.manifestsFingerprint = nil
        case "young directory": node.directories[0].appearedAt = Fixture.ago(10)
        default:
            node.directories[0].kind = .configHash
        }
        #expect(OrphanConfirmation.update(after: node.input).missing.isEmpty)
    }

    @Test("orphans.reap off still records sightings: the snapshot is no less true")
    func reapOffRecords() {
        var node = node()
        node.policy.orphans.reap = false
        #expect(OrphanConfirmation.update(after: node.input).missing.map(\.podUID) == [orphan])
    }

    // MARK: Hole 4: a refresh time in the future

    @Test("manifests with a future mtime (touch -d '+1 day') keep every orphan: manifests-time-invalid",
          arguments: [86400.0, 60, 6])
    func futureRefresh(secondsAhead: Double) throws {
        var node = node()
        node.orphanObservations = [orphan: sighting(ago: 3600)]
        node.manifestsRefreshedAt = Fixture.now.addingTimeInterval(secondsAhead)
        // The attack: a pod directory made after the touch, old-mtime content.
        node.directories[0].appearedAt = Fixture.ago(5)
        expect(try node.verdict(orphanPath), .keep, [.manifestsTimeInvalid])
        #expect(node.plan().orphanPodDirectories.isEmpty)
    }

    @Test("a refresh time within the slack of now counts")
    func withinSlack() throws {
        var node = node()
        node.orphanObservations = [orphan: sighting(ago: 3600)]
        node.manifestsRefreshedAt = Fixture.now.addingTimeInterval(4)
        expect(try node.verdict(orphanPath), .reap, [.orphan, .idle])
    }

    @Test("the last check (rejudge) keeps an orphan on a future refresh time")
    func rejudgeFuture() throws {
        var node = node()
        node.manifestsRefreshedAt = Fixture.now.addingTimeInterval(86400)
        let directory = node.directories[0]
        let verdict = Reconciler.rejudge(
            directory.volumes[0], in: directory, manifests: node.input.manifests, access: [:], policy: node.policy, now: Fixture.now
        )
        #expect(verdict.verdict == .keep)
        #expect(verdict.reasons.contains(.manifestsTimeInvalid))
        #expect(Reconciler.orphanKeepReasons(directory, manifests: node.input.manifests, policy: node.policy, now: Fixture.now) == [.manifestsTimeInvalid])
    }
}

/// Issue 8: a network pod source whose watch failed keeps the pods it knows,
/// but vouches for no orphan until it lists again.
@Suite("Reconciler: an unsynced pod source")
struct UnsyncedPodSourceTests {
    let orphan = Fixture.uid(15)
    let finished = Fixture.uid(3)

    func node() -> NodeFixture {
        var node = NodeFixture()
        node.addVolume(uid: orphan)
        node.pods.append(Fixture.pod(finished, name: "job-3", namespace: "batch", phase: "Succeeded", finishedAt: Fixture.ago(7200)))
        node.addVolume(uid: finished)
        node.orphanObservations = [orphan: Fixture.sighting(orphan, ago: 600, write: "write-1")]
        return node
    }

    @Test("synced: the confirmed orphan and the finished pod's volume are reaped")
    func synced() throws {
        let node = node()
        expect(try node.verdict(Fixture.volumePath(orphan, .emptyDir, "scratch")), .reap, [.orphan, .idle])
        expect(try node.verdict(Fixture.volumePath(finished, .emptyDir, "scratch")), .reap, [.podTerminated, .idle])
    }

    @Test("unsynced: the orphan is kept (pod-source-unsynced), the pods it knows are still judged by their phase")
    func unsynced() throws {
        var node = node()
        node.manifestsSynced = false
        node.manifestErrors = [ManifestError(file: "https://10.0.0.1:6443/api/v1/pods", message: "watch cut in the middle of an event")]
        let verdict = try node.verdict(Fixture.volumePath(orphan, .emptyDir, "scratch"))
        expect(verdict, .keep, [.podSourceUnsynced])
        #expect(verdict.orphan)
        expect(try node.verdict(Fixture.volumePath(finished, .emptyDir, "scratch")), .reap, [.podTerminated, .idle])
        #expect(node.plan().manifests.synced == false)
        #expect(node.plan().manifests.complete == false)
        // Nor does it count as a sighting for a later confirmation.
        #expect(OrphanConfirmation.update(after: node.input).missing.isEmpty)
    }
}
