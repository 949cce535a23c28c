import Foundation
import ReaperCore
import Testing

/// `PodSnapshot.pods(matching:kind:)` answers from an index built once per
/// snapshot; these pin what it answers: every document for a directory, in
/// the snapshot's order, duplicates and mirror pods included.
@Suite("PodSnapshot lookup")
struct PodSnapshotLookupTests {
    static let hash = Fixture.configHash
    static let node = [OwnerReference(kind: "Node", name: "node-1")]

    /// Duplicate UIDs, the kubelet's own static pod (uid = hash), a Node-owned
    /// mirror pod (between them, to check the order), forged claims, and a
    /// mirror pod whose own UID is the hash too (one document, listed once).
    static let documents: [Pod] = [
        Fixture.pod(Fixture.uid(1), phase: "Succeeded"),
        Fixture.pod(Fixture.uid(2)),
        Fixture.pod(hash, name: "etcd-kubelet", owners: []),
        Fixture.pod(Fixture.uid(1), phase: "Running"),
        Fixture.pod(Fixture.uid(50), name: "etcd-mirror", annotations: [Pod.configMirrorAnnotation: hash], owners: node),
        Fixture.pod(Fixture.uid(66), name: "forged-no-owner", annotations: [Pod.configMirrorAnnotation: hash], owners: []),
        Fixture.pod(Fixture.uid(67), name: "forged-hash-only", annotations: [Pod.configHashAnnotation: hash], owners: node),
        Fixture.pod(hash, name: "etcd-both", annotations: [Pod.configMirrorAnnotation: hash], owners: node),
        Fixture.pod(Fixture.uid(68), name: "mirror-of-uid", annotations: [Pod.configMirrorAnnotation: Fixture.uid(2)], owners: node),
    ]

    static func snapshot(_ pods: [Pod]) -> PodSnapshot {
        PodSnapshot(path: Fixture.manifestsPath, files: ["pods.json"], refreshedAt: Fixture.now, errors: [], pods: pods)
    }

    @Test("a UID directory gets every document with that UID, in order; duplicates all count")
    func byUID() {
        let snapshot = Self.snapshot(Self.documents)
        #expect(snapshot.pods(matching: Fixture.uid(1), kind: .uid).map(\.phase) == ["Succeeded", "Running"])
        #expect(snapshot.pods(matching: Fixture.uid(2), kind: .uid).map(\.uid) == [Fixture.uid(2)])
        // A mirror annotation naming a UID matches no UID directory.
        #expect(snapshot.pods(matching: Fixture.uid(2), kind: .uid).count == 1)
        #expect(snapshot.pods(matching: Fixture.uid(3), kind: .uid).isEmpty)
        #expect(!snapshot.describesAnyPod(matching: Fixture.uid(3), kind: .uid))
        #expect(snapshot.describesAnyPod(matching: Fixture.uid(1), kind: .uid))
    }

    @Test("a config-hash directory gets the kubelet's document and Node-owned mirrors, in order, each once; forged claims match nothing")
    func byConfigHash() {
        let snapshot = Self.snapshot(Self.documents)
        #expect(snapshot.pods(matching: Self.hash, kind: .configHash).map(\.name) == ["etcd-kubelet", "etcd-mirror", "etcd-both"])
        // The same lookup as the documents themselves say (`Pod.describesStaticPod`).
        #expect(snapshot.pods(matching: Self.hash, kind: .configHash) == Self.documents.filter { $0.describesStaticPod(Self.hash) })
        #expect(!snapshot.describesAnyPod(matching: "0123456789abcdef0123456789abcdef", kind: .configHash))
    }

    @Test("replacing or changing the pods changes what a directory matches")
    func followsChanges() {
        var snapshot = Self.snapshot(Self.documents)
        snapshot.pods.removeAll { $0.uid == Fixture.uid(1) }
        #expect(snapshot.pods(matching: Fixture.uid(1), kind: .uid).isEmpty)
        snapshot.pods.append(Fixture.pod(Fixture.uid(9)))
        #expect(snapshot.pods(matching: Fixture.uid(9), kind: .uid).count == 1)
        snapshot.pods = []
        #expect(!snapshot.describesAnyPod(matching: Self.hash, kind: .configHash))
        #expect(snapshot == Self.snapshot([]))
    }
}
