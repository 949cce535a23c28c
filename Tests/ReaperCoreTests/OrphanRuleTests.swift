import Foundation
import ReaperCore
import Testing

/// Design §4.4: an orphan goes only on a complete, fresh snapshot.
@Suite("Reconciler: orphans")
struct OrphanRuleTests {
    let orphan = Fixture.uid(15)

    /// One orphan pod directory (appeared a day ago, listed first) and two running pods the
    /// manifests list, so that the orphan is a third of the node (below limits.maxOrphanFraction).
    func node(appearedAt: Date = Fixture.ago(86400)) -> NodeFixture {
        var node = NodeFixture()
        node.addVolume(uid: orphan, appearedAt: appearedAt)
        for number in [3, 4] {
            node.pods.append(Fixture.pod(Fixture.uid(number), name: "web-\(number)", namespace: "shop", phase: "Running", finishedAt: nil))
            node.addVolume(uid: Fixture.uid(number))
        }
        return node
    }

    var orphanPath: String { Fixture.volumePath(orphan, .emptyDir, "scratch") }

    @Test("an orphan on complete, fresh manifests is reaped: orphan, idle; its pod directory too")
    func orphanReaped() throws {
        let node = node()
        let plan = node.plan()
        let verdict = try node.verdict(orphanPath)
        expect(verdict, .reap, [.orphan, .idle])
        #expect(verdict.orphan)
        #expect(verdict.pod == nil)
        #expect(verdict.namespace == nil)
        #expect(verdict.podPhase == nil)
        #expect(verdict.lastAccessSource == .mtime)
        #expect(plan.orphanPodDirectories == ["\(Fixture.kubeletRoot)/pods/\(orphan)"])
    }

    @Test("orphans.reap off keeps: orphans-disabled")
    func orphansDisabled() throws {
        var node = node()
        node.policy.orphans.reap = false
        expect(try node.verdict(orphanPath), .keep, [.orphansDisabled])
        #expect(node.plan().orphanPodDirectories.isEmpty)
    }

    @Test("manifests that list no pod keep every orphan: manifests-empty")
    func manifestsEmpty() throws {
        var node = node()
        node.pods = []
        expect(try node.verdict(orphanPath), .keep, [.manifestsEmpty])
        node.manifestFiles = []
        node.manifestsRefreshedAt = nil
        expect(try node.verdict(orphanPath), .keep, [.manifestsEmpty])
        #expect(node.plan().orphanPodDirectories.isEmpty)
    }

    @Test("a manifest file that did not parse keeps every orphan: manifests-incomplete")
    func manifestsIncomplete() throws {
        var node = node()
        node.manifestFiles.append(Fixture.manifestsPath + "/truncated.json")
        node.manifestErrors = [ManifestError(file: Fixture.manifestsPath + "/truncated.json", message: "unexpected end of data")]
        expect(try node.verdict(orphanPath), .keep, [.manifestsIncomplete])
        let plan = node.plan()
        #expect(!plan.manifests.complete)
        #expect(plan.manifests.errors == ["\(Fixture.manifestsPath)/truncated.json: unexpected end of data"])
        #expect(plan.orphanPodDirectories.isEmpty)
    }

    @Test("an incomplete snapshot does not keep a terminated pod's volumes")
    func incompleteDoesNotTouchTerminated() throws {
        var node = NodeFixture(pods: [Fixture.pod(Fixture.uid(1))])
        node.manifestErrors = [ManifestError(file: "x.yaml", message: "bad")]
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("manifests older than orphans.manifestsMaxAge keep: manifests-stale")
    func manifestsStale() throws {
        var node = node()
        node.manifestsRefreshedAt = Fixture.ago(11 * 60)
        expect(try node.verdict(orphanPath), .keep, [.manifestsStale])
        node.manifestsRefreshedAt = Fixture.ago(9 * 60)
        expect(try node.verdict(orphanPath), .reap, [.orphan, .idle])
        node.policy.orphans.manifestsMaxAge = 5 * 60
        expect(try node.verdict(orphanPath), .keep, [.manifestsStale])
    }

    @Test("a pod directory that appeared after (or when) the manifests were refreshed keeps: manifests-older-than-pod",
          arguments: [0.0, 1.0, 30.0])
    func manifestsOlderThanPod(secondsAfterRefresh: Double) throws {
        let refreshed = Fixture.ago(60)
        var node = node(appearedAt: refreshed.addingTimeInterval(secondsAfterRefresh))
        node.manifestsRefreshedAt = refreshed
        expect(try node.verdict(orphanPath), .keep, [.manifestsOlderThanPod])
    }

    @Test("a pod directory that appeared just before the refresh may go")
    func appearedBeforeRefresh() throws {
        let refreshed = Fixture.ago(60)
        var node = node(appearedAt: refreshed.addingTimeInterval(-0.001))
        node.manifestsRefreshedAt = refreshed
        expect(try node.verdict(orphanPath), .reap, [.orphan, .idle])
    }

    @Test("snapshot reasons add up")
    func snapshotReasonsTogether() throws {
        var node = node()
        node.policy.orphans.reap = false
        node.manifestErrors = [ManifestError(file: "x.yaml", message: "bad")]
        node.manifestsRefreshedAt = Fixture.ago(3600)
        expect(try node.verdict(orphanPath), .keep, [.orphansDisabled, .manifestsIncomplete, .manifestsStale])
        node.manifestsRefreshedAt = Fixture.ago(20)
        node.directories[0].appearedAt = Fixture.ago(10)
        expect(try node.verdict(orphanPath), .keep, [.orphansDisabled, .manifestsIncomplete, .manifestsOlderThanPod])
    }

    @Test("an orphan with a recent access keeps, and so does its pod directory")
    func recentOrphan() throws {
        var node = node()
        node.addVolume(uid: orphan, name: "fresh", scan: Fixture.scan(idle: 60))
        let plan = node.plan()
        expect(try node.verdict(Fixture.volumePath(orphan, .emptyDir, "scratch")), .reap, [.orphan, .idle])
        expect(try node.verdict(Fixture.volumePath(orphan, .emptyDir, "fresh")), .keep, [.recentAccess])
        #expect(plan.orphanPodDirectories.isEmpty)
    }

    @Test("orphanPodDirectories lists only orphan directories whose volumes all reap")
    func orphanPodDirectories() throws {
        var node = node()
        node.maxOrphanFractionOff()
        let whole = Fixture.uid(20), partly = Fixture.uid(21), finished = Fixture.uid(22), empty = Fixture.uid(23)
        node.addVolume(uid: whole, name: "a")
        node.addVolume(uid: whole, plugin: .configMap, name: "b")
        node.addVolume(uid: partly, name: "a")
        node.addVolume(uid: partly, name: "b", scan: Fixture.scan(mounts: [MountInfo(mountPoint: "/m", filesystemType: "tmpfs")]))
        node.pods.append(Fixture.pod(finished))
        node.addVolume(uid: finished, name: "a")
        node.directories.append(PodDirectory(
            uid: empty, path: "\(Fixture.kubeletRoot)/pods/\(empty)", kind: .uid, appearedAt: Fixture.ago(86400), volumes: []
        ))
        let plan = node.plan()
        #expect(plan.orphanPodDirectories == [orphan, whole, empty].map { "\(Fixture.kubeletRoot)/pods/\($0)" }.sorted())
        #expect(plan.volumes.filter { $0.path.contains(partly) }.map(\.verdict).sorted { $0.rawValue < $1.rawValue } == [.keep, .reap])
    }

    @Test("orphans.removePodDir off: volumes go, pod directories stay")
    func removePodDirOff() throws {
        var node = node()
        node.policy.orphans.removePodDir = false
        let plan = node.plan()
        expect(try node.verdict(orphanPath), .reap, [.orphan, .idle])
        #expect(plan.orphanPodDirectories.isEmpty)
    }
}

extension NodeFixture {
    /// Lets every orphan count (the fraction limit has its own tests).
    mutating func maxOrphanFractionOff() { policy.limits.maxOrphanFraction = 1 }
}
