import Foundation
import ReaperCore
import Testing

/// Design §4.3: the pod's phase, owners, namespace and protect annotation.
@Suite("Reconciler: pod rules")
struct PodRuleTests {
    let uid = Fixture.uid(1)

    @Test("a finished pod's idle volume is reaped: pod-terminated, idle")
    func terminatedAndIdle() throws {
        let node = NodeFixture(pods: [Fixture.pod(uid)])
        let verdict = try node.verdict()
        expect(verdict, .reap, [.podTerminated, .idle])
        #expect(verdict.pod == "report-job-1")
        #expect(verdict.namespace == "batch")
        #expect(verdict.podPhase == "Succeeded")
        #expect(!verdict.orphan)
        #expect(verdict.idleSeconds == 2 * 3600, "finishedAt (2h) is newer than the mtimes (3h)")
        #expect(node.plan().orphanPodDirectories.isEmpty, "a pod with a manifest is never an orphan directory")
    }

    @Test("a Failed pod is terminated too")
    func failedPod() throws {
        expect(try NodeFixture(pods: [Fixture.pod(uid, phase: "Failed")]).verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("a pod that may still run keeps its volumes", arguments: [
        ("Running", Reason.podRunning),
        ("Pending", .podPending),
        ("Unknown", .podPhaseUnknown),
        ("Evicted?", .podPhaseUnknown),
    ])
    func livePhases(phase: String, reason: Reason) throws {
        let verdict = try NodeFixture(pods: [Fixture.pod(uid, phase: phase, finishedAt: nil)]).verdict()
        expect(verdict, .keep, [reason])
    }

    @Test("a manifest without status (static pod manifest) keeps: pod-phase-unknown")
    func noStatus() throws {
        let verdict = try NodeFixture(pods: [Fixture.pod(uid, phase: nil, finishedAt: nil)]).verdict()
        expect(verdict, .keep, [.podPhaseUnknown])
        #expect(verdict.podPhase == nil)
    }

    @Test("pods.phases [Succeeded]: a Failed pod keeps (phase-excluded), a Succeeded one still goes")
    func phaseExcluded() throws {
        var failed = NodeFixture(pods: [Fixture.pod(uid, phase: "Failed")])
        failed.policy.pods.phases = [.succeeded]
        expect(try failed.verdict(), .keep, [.phaseExcluded])

        var succeeded = NodeFixture(pods: [Fixture.pod(uid, phase: "Succeeded")])
        succeeded.policy.pods.phases = [.succeeded]
        expect(try succeeded.verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("owners in pods.excludeOwnerKinds keep", arguments: [
        ("DaemonSet", Reason.ownerDaemonSet),
        ("Node", .ownerNode),
        ("Workflow", .ownerExcluded),
    ])
    func excludedOwner(kind: String, reason: Reason) throws {
        var node = NodeFixture(pods: [Fixture.pod(uid, phase: "Failed", owners: [OwnerReference(kind: kind, name: "owner")])])
        node.policy.pods.excludeOwnerKinds = ["DaemonSet", "Node", "Workflow"]
        expect(try node.verdict(), .keep, [reason])
    }

    @Test("an owner kind not in pods.excludeOwnerKinds does not keep")
    func ownerNotExcluded() throws {
        var node = NodeFixture(pods: [Fixture.pod(uid, owners: [OwnerReference(kind: "Workflow", name: "w")])])
        node.policy.pods.excludeOwnerKinds = ["DaemonSet"]
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
        // ... and the default list does not keep a DaemonSet once it is taken out.
        var daemonSet = NodeFixture(pods: [Fixture.pod(uid, owners: [OwnerReference(kind: "DaemonSet", name: "d")])])
        daemonSet.policy.pods.excludeOwnerKinds = []
        expect(try daemonSet.verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("a pod in pods.excludeNamespaces keeps: namespace-excluded")
    func namespaceExcluded() throws {
        expect(try NodeFixture(pods: [Fixture.pod(uid, namespace: "kube-system")]).verdict(), .keep, [.namespaceExcluded])
        var custom = NodeFixture(pods: [Fixture.pod(uid, namespace: "batch")])
        custom.policy.pods.excludeNamespaces = ["batch"]
        expect(try custom.verdict(), .keep, [.namespaceExcluded])
    }

    @Test("the protect annotation with any value but \"false\" keeps", arguments: ["true", "", "yes", "False", "0", " false"])
    func protected(value: String) throws {
        let node = NodeFixture(pods: [Fixture.pod(uid, annotations: ["volume-reaper.io/keep": value])])
        expect(try node.verdict(), .keep, [.protected])
    }

    @Test("protect annotation \"false\" does not protect")
    func protectFalse() throws {
        let node = NodeFixture(pods: [Fixture.pod(uid, annotations: ["volume-reaper.io/keep": "false"])])
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("pods.protectAnnotation names the key")
    func customProtectKey() throws {
        var node = NodeFixture(pods: [Fixture.pod(uid, annotations: ["volume-reaper.io/keep": "true", "example.com/hold": "1"])])
        node.policy.pods.protectAnnotation = "example.com/hold"
        expect(try node.verdict(), .keep, [.protected])
        node.pods = [Fixture.pod(uid, annotations: ["volume-reaper.io/keep": "true"])]
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
    }

    @Test("every keep reason of a pod is listed, each once")
    func allPodReasons() throws {
        let node = NodeFixture(pods: [Fixture.pod(
            uid, namespace: "kube-system", phase: "Running", annotations: ["volume-reaper.io/keep": "true"],
            owners: [OwnerReference(kind: "DaemonSet", name: "a"), OwnerReference(kind: "Node", name: "n")], finishedAt: nil
        )])
        expect(try node.verdict(), .keep, [.podRunning, .protected, .namespaceExcluded, .ownerDaemonSet, .ownerNode])
    }

    // MARK: Several documents, one UID

    @Test("several documents name one UID: any that keeps wins", arguments: [
        (Fixture.pod(Fixture.uid(1), phase: "Running", finishedAt: nil), Reason.podRunning),
        (Fixture.pod(Fixture.uid(1), annotations: ["volume-reaper.io/keep": "true"]), .protected),
        (Fixture.pod(Fixture.uid(1), namespace: "kube-system"), .namespaceExcluded),
    ])
    func severalDocuments(other: Pod, reason: Reason) throws {
        // The order of the documents must not matter.
        for pods in [[Fixture.pod(uid), other], [other, Fixture.pod(uid)]] {
            expect(try NodeFixture(pods: pods).verdict(), .keep, [reason])
        }
    }

    @Test("several documents that all let go: reaped")
    func severalDocumentsAgree() throws {
        let node = NodeFixture(pods: [Fixture.pod(uid), Fixture.pod(uid, phase: "Failed", finishedAt: Fixture.ago(4 * 3600))])
        let verdict = try node.verdict()
        expect(verdict, .reap, [.podTerminated, .idle])
        #expect(verdict.idleSeconds == 2 * 3600, "the latest finishedAt of all documents counts")
    }

    // MARK: Static pods (design §3)

    @Test("a config-hash directory no manifest matches is a static pod, never an orphan")
    func unmatchedStaticPod() throws {
        var node = NodeFixture(uid: Fixture.configHash, kind: .configHash, pods: [Fixture.pod(Fixture.uid(99), phase: "Running")])
        let verdict = try node.verdict()
        expect(verdict, .keep, [.staticPod])
        #expect(!verdict.orphan)
        #expect(node.plan().orphanPodDirectories.isEmpty)
        // Even with no snapshot at all it is a static pod, not a snapshot question.
        node.pods = []
        expect(try node.verdict(), .keep, [.staticPod])
    }

    @Test("a config-hash directory matches the kubelet's view (metadata.uid = hash)")
    func staticPodMatchedByUID() throws {
        let hash = Fixture.configHash
        let verdict = try NodeFixture(uid: hash, kind: .configHash, pods: [Fixture.pod(hash, name: "etcd-node", owners: [])]).verdict()
        expect(verdict, .reap, [.podTerminated, .idle])
        #expect(verdict.pod == "etcd-node")
    }

    @Test("a config-hash directory matches a mirror pod owned by the Node with config.mirror = hash")
    func staticPodMatchedByMirror() throws {
        let hash = Fixture.configHash
        var mirror = Fixture.pod(
            Fixture.uid(50), name: "etcd-node", namespace: "kube-system", phase: "Running",
            annotations: [Pod.configMirrorAnnotation: hash, Pod.configHashAnnotation: hash],
            owners: [OwnerReference(kind: "Node", name: "node-1")]
        )
        var node = NodeFixture(uid: hash, kind: .configHash, pods: [mirror])
        expect(try node.verdict(), .keep, [.podRunning, .ownerNode, .namespaceExcluded])
        // Matched, so judged as that pod: with nothing excluded, a finished mirror pod lets it go.
        mirror.phase = "Succeeded"
        node.pods = [mirror]
        node.policy.pods.excludeOwnerKinds = []
        node.policy.pods.excludeNamespaces = []
        expect(try node.verdict(), .reap, [.podTerminated, .idle])
    }

    enum ForgedClaim: String, CaseIterable, Sendable { case configHash, configMirrorWithoutNodeOwner, configMirrorOwnedByJob, bothAnnotations }

    /// Issue 13 hole 5: a Succeeded tenant pod annotated with a real static
    /// pod's hash made that static pod's directory match it, and reaped.
    @Test("a forged config annotation matches nothing: the directory stays static-pod", arguments: ForgedClaim.allCases)
    func forgedStaticPodAnnotation(claim: ForgedClaim) throws {
        let hash = Fixture.configHash
        let (annotations, owners): ([String: String], [OwnerReference]) = switch claim {
        case .configHash: ([Pod.configHashAnnotation: hash], [])
        case .configMirrorWithoutNodeOwner: ([Pod.configMirrorAnnotation: hash], [])
        case .configMirrorOwnedByJob: ([Pod.configMirrorAnnotation: hash], [OwnerReference(kind: "Job", name: "x")])
        case .bothAnnotations: ([Pod.configHashAnnotation: hash, Pod.configMirrorAnnotation: hash], [OwnerReference(kind: "Job", name: "x")])
        }
        let tenant = Fixture.pod(Fixture.uid(66), name: "innocent", namespace: "tenant-a", annotations: annotations, owners: owners)
        let node = NodeFixture(uid: hash, kind: .configHash, pods: [tenant])
        let verdict = try node.verdict()
        expect(verdict, .keep, [.staticPod])
        #expect(verdict.pod == nil)
        #expect(!verdict.orphan)
    }

    @Test("config annotations match config-hash directories only, not a UID directory")
    func annotationsDoNotMatchUIDs() throws {
        let other = Fixture.uid(2)
        let document = Fixture.pod(Fixture.uid(50), annotations: [Pod.configHashAnnotation: other, Pod.configMirrorAnnotation: other])
        var node = NodeFixture(uid: other, pods: [document])
        node.maxOrphanFractionOff()
        let verdict = try node.verdict()
        #expect(verdict.orphan)
        expect(verdict, .reap, [.orphan, .idle])
    }
}
