import Foundation
import ReaperCore
import Testing
@testable import PodManifests

@Suite("Manifest shapes")
struct ShapeTests {
    @Test("kubelet /pods PodList JSON: every used field, items without kind")
    func kubeletPodList() throws {
        let pods = try ManifestReader.parse(Fixtures.kubeletPods, file: "/m/pods.json")
        #expect(pods.map(\.name) == [
            "backup-28915200-x7k2p", "web-6d9f7c8b5-2lq4z", "fluent-bit-8kqvx", "kube-apiserver-node-7", "migrate-xz81k",
        ])
        #expect(pods.allSatisfy { $0.source == "/m/pods.json" })

        let backup = pods[0]
        #expect(backup.uid == "0b6f4c4e-8a51-4c55-9f7e-2f0c6a3d9e11")
        #expect(backup.namespace == "batch")
        #expect(backup.phase == "Succeeded")
        #expect(backup.owners == [OwnerReference(kind: "Job", name: "backup-28915200")])
        #expect(backup.annotations["volume.alpha.kubernetes.io/last-accessed-at"] == "2026-11-29T06:40:00Z")
        #expect(backup.annotations["kubernetes.io/config.seen"] == "2026-11-29T06:00:01.123456789Z")
        // Latest state.terminated over init and regular containers; lastState is ignored.
        #expect(backup.lastContainerFinishedAt == date("2026-11-29T06:45:09Z"))

        let web = pods[1]
        #expect(web.phase == "Running")
        #expect(web.annotations == ["volume-reaper.io/keep": "true"])
        #expect(web.lastContainerFinishedAt == nil)

        #expect(pods[2].owners == [OwnerReference(kind: "DaemonSet", name: "fluent-bit")])

        let mirror = pods[3]
        #expect(mirror.uid == "4c9a2b7d1e8f3a6b5c0d9e8f7a6b5c4d")
        #expect(mirror.owners.map(\.kind) == ["Node"])
        #expect(mirror.annotations[Pod.configHashAnnotation] == "4c9a2b7d1e8f3a6b5c0d9e8f7a6b5c4d")

        let migrate = pods[4]
        #expect(migrate.namespace == "default")
        #expect(migrate.phase == "Failed")
        #expect(migrate.lastContainerFinishedAt == nil) // finishedAt: null adds nothing
    }

    @Test("kubectl get pods -o json (kind: List)")
    func kubectlList() throws {
        let pods = try ManifestReader.parse(Fixtures.kubectlList, file: "k.json")
        #expect(pods.count == 2)
        #expect(pods[0].uid == "11111111-2222-4333-8444-555555555555")
        #expect(pods[0].lastContainerFinishedAt == date("2026-11-29T05:10:00Z"))
        #expect(pods[1].phase == "Pending")
        #expect(pods[1].owners == [OwnerReference(kind: "StatefulSet", name: "api")])
    }

    @Test("a single Pod in YAML")
    func singlePodYAML() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: trainer
              namespace: ml
              uid: 3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c
              ownerReferences:
              - apiVersion: batch/v1
                kind: Job
                name: trainer
            spec:
              containers:
              - name: train
                image: trainer:5
            status:
              phase: Failed
              containerStatuses:
              - name: train
                state:
                  terminated:
                    exitCode: 1
                    finishedAt: 2026-11-29T04:00:00Z
            """
        let pods = try ManifestReader.parse(yaml, file: "p.yaml")
        #expect(pods == [Pod(
            uid: "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c", name: "trainer", namespace: "ml", phase: "Failed",
            owners: [OwnerReference(kind: "Job", name: "trainer")],
            lastContainerFinishedAt: date("2026-11-29T04:00:00Z"), source: "p.yaml"
        )])
    }

    @Test("multi-document YAML with comments, empty documents and a PodList")
    func multiDocument() throws {
        let yaml = """
            # Pods of node-7, refreshed by a sidecar.
            ---
            apiVersion: v1
            kind: Pod   # the first
            metadata:
              name: a
              uid: aaaaaaaa-0000-4000-8000-000000000001  # a comment after the uid
            status: {phase: Succeeded}
            ---
            # an empty document is skipped
            ---
            apiVersion: v1
            kind: PodList
            items:
            - metadata: {name: b, namespace: ns, uid: bbbbbbbb-0000-4000-8000-000000000002}
              status:
                phase: Running
            # a trailing comment
            - kind: Pod
              metadata: {name: c, uid: "cccccccc-0000-4000-8000-000000000003"}
            ---
            """
        let pods = try ManifestReader.parse(yaml, file: "multi.yaml")
        #expect(pods.map(\.name) == ["a", "b", "c"])
        #expect(pods.map(\.uid) == [
            "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002",
            "cccccccc-0000-4000-8000-000000000003",
        ])
        #expect(pods.map(\.phase) == ["Succeeded", "Running", nil])
        #expect(pods[1].namespace == "ns")
    }

    @Test("a static pod manifest has no status: phase nil")
    func staticPodManifest() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: etcd
              namespace: kube-system
              uid: 9a8b7c6d5e4f30211203f4e5d6c7b8a9
              annotations:
                kubernetes.io/config.hash: 9a8b7c6d5e4f30211203f4e5d6c7b8a9
              labels: {component: etcd, tier: control-plane}
            spec:
              hostNetwork: true
              containers:
              - name: etcd
                image: registry.k8s.io/etcd:3.5.15-0
                volumeMounts: [{mountPath: /var/lib/etcd, name: etcd-data}]
              volumes:
              - {name: etcd-data, hostPath: {path: /var/lib/etcd, type: DirectoryOrCreate}}
            """
        let pod = try #require(try ManifestReader.parse(yaml, file: "etcd.yaml").first)
        #expect(pod.phase == nil)
        #expect(pod.owners.isEmpty)
        #expect(pod.lastContainerFinishedAt == nil)
        #expect(pod.annotations[Pod.configHashAnnotation] == "9a8b7c6d5e4f30211203f4e5d6c7b8a9")
    }

    @Test("annotations YAML would type come back as their original text")
    func annotationsAsText() throws {
        let yaml = """
            kind: Pod
            metadata:
              uid: 12345
              name: typed
              annotations:
                volume.alpha.kubernetes.io/last-accessed-at: 2026-11-29T07:00:00Z
                date-only: 2026-11-29
                volume-reaper.io/keep: true
                yes-word: yes
                replicas: 123
                octal: 0123
                hex: 0x1F
                float: 1.50
                quoted: "false"
                literal: |
                  line one
                empty-null:
                tilde: ~
            """
        let pod = try #require(try ManifestReader.parse(yaml, file: "a.yaml").first)
        #expect(pod.uid == "12345") // Kubernetes' YAML decoder keeps the text of a string field
        #expect(pod.annotations == [
            "volume.alpha.kubernetes.io/last-accessed-at": "2026-11-29T07:00:00Z",
            "date-only": "2026-11-29",
            "volume-reaper.io/keep": "true",
            "yes-word": "yes",
            "replicas": "123",
            "octal": "0123",
            "hex": "0x1F",
            "float": "1.50",
            "quoted": "false",
            "literal": "line one\n",
            "empty-null": "",
            "tilde": "",
        ])
    }

    @Test("JSON annotation values that are not strings are read as text too")
    func jsonAnnotationScalars() throws {
        let json = #"{"kind": "Pod", "metadata": {"uid": "u1", "annotations": {"b": true, "n": 42, "z": null, "s": "x"}}}"#
        let pod = try #require(try ManifestReader.parse(json, file: "a.json").first)
        #expect(pod.annotations == ["b": "true", "n": "42", "z": "", "s": "x"])
    }

    @Test("finishedAt is the latest over containers, init and ephemeral containers")
    func finishedAtMaximum() throws {
        func pod(init initTime: String, main: String, ephemeral: String) throws -> Pod {
            let yaml = """
                kind: Pod
                metadata: {uid: u}
                status:
                  phase: Succeeded
                  initContainerStatuses:
                  - {name: i, state: {terminated: {finishedAt: "\(initTime)"}}}
                  containerStatuses:
                  - {name: a, state: {terminated: {finishedAt: "2026-11-29T01:00:00Z"}}}
                  - {name: b, state: {terminated: {finishedAt: "\(main)"}}}
                  - {name: c, state: {running: {startedAt: "2026-11-29T09:00:00Z"}}, lastState: {terminated: {finishedAt: "2026-11-29T09:00:00Z"}}}
                  ephemeralContainerStatuses:
                  - {name: debug, state: {terminated: {finishedAt: "\(ephemeral)"}}}
                """
            return try #require(try ManifestReader.parse(yaml, file: "f.yaml").first)
        }
        #expect(try pod(init: "2026-11-29T05:00:00Z", main: "2026-11-29T02:00:00Z", ephemeral: "2026-11-29T00:00:00Z")
            .lastContainerFinishedAt == date("2026-11-29T05:00:00Z"))
        #expect(try pod(init: "2026-11-29T00:30:00Z", main: "2026-11-29T03:00:00Z", ephemeral: "2026-11-29T00:00:00Z")
            .lastContainerFinishedAt == date("2026-11-29T03:00:00Z"))
        #expect(try pod(init: "2026-11-29T00:30:00Z", main: "2026-11-29T03:00:00Z", ephemeral: "2026-11-29T04:00:00+02:00")
            .lastContainerFinishedAt == date("2026-11-29T03:00:00Z"))
        #expect(try pod(init: "2026-11-29T00:30:00Z", main: "2026-11-29T03:00:00Z", ephemeral: "2026-11-29T06:00:00.5Z")
            .lastContainerFinishedAt == date("2026-11-29T06:00:00Z").addingTimeInterval(0.5))
    }

    @Test("JSON is decided by content: JSON in .yaml, YAML in .json, flow YAML starting with {")
    func contentDecides() throws {
        #expect(try ManifestReader.parse(#"{"kind":"Pod","metadata":{"uid":"j"}}"#, file: "x.yaml").map(\.uid) == ["j"])
        #expect(try ManifestReader.parse("kind: Pod\nmetadata:\n  uid: y\n", file: "x.json").map(\.uid) == ["y"])
        #expect(try ManifestReader.parse("{kind: Pod, metadata: {uid: f, name: flow}}", file: "x.json").map(\.name) == ["flow"])
        #expect(try ManifestReader.parse("\u{FEFF}  \n{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"bom\"}}", file: "b.json")
            .map(\.uid) == ["bom"])
    }

    @Test("duplicate UIDs are all kept, apiVersion is not checked")
    func duplicates() throws {
        let yaml = """
            kind: Pod
            metadata: {uid: same, name: one}
            status: {phase: Succeeded}
            ---
            apiVersion: v2beta1
            kind: Pod
            metadata: {uid: same, name: two, annotations: {volume-reaper.io/keep: "yes"}}
            status: {phase: Succeeded}
            """
        let pods = try ManifestReader.parse(yaml, file: "d.yaml")
        #expect(pods.map(\.name) == ["one", "two"])
        #expect(Set(pods.map(\.uid)) == ["same"])
    }

    @Test("an empty items list is fine")
    func emptyList() throws {
        #expect(try ManifestReader.parse(#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}"#, file: "e.json").isEmpty)
        #expect(try ManifestReader.parse("kind: List\nitems: []\n", file: "e.yaml").isEmpty)
    }

    @Test("a 5,000-pod PodList parses")
    func bigPodList() throws {
        var items: [String] = []
        for index in 0..<5_000 {
            items.append(#"""
                {"metadata":{"name":"job-\#(index)","namespace":"ci","uid":"00000000-0000-4000-8000-\#(String(format: "%012d", index))","annotations":{"kubernetes.io/config.source":"api","volume.alpha.kubernetes.io/last-accessed-at":"2026-11-29T06:00:00Z"},"ownerReferences":[{"apiVersion":"batch/v1","kind":"Job","name":"job-\#(index)","uid":"j\#(index)","controller":true}]},"spec":{"volumes":[{"name":"work","emptyDir":{}}],"containers":[{"name":"build","image":"builder:1","command":["make","-j8"],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"volumeMounts":[{"name":"work","mountPath":"/work"}]}],"restartPolicy":"Never"},"status":{"phase":"Succeeded","initContainerStatuses":[{"name":"init","state":{"terminated":{"exitCode":0,"startedAt":"2026-11-29T05:00:00Z","finishedAt":"2026-11-29T05:01:00Z"}}}],"containerStatuses":[{"name":"build","state":{"terminated":{"exitCode":0,"reason":"Completed","startedAt":"2026-11-29T05:01:00Z","finishedAt":"2026-11-29T05:\#(String(format: "%02d", index % 60)):00Z"}},"ready":false,"restartCount":0}]}}
                """#)
        }
        let json = #"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":["# + items.joined(separator: ",") + "]}"
        let pods = try ManifestReader.parse(json, file: "big.json")
        #expect(pods.count == 5_000)
        #expect(Set(pods.map(\.uid)).count == 5_000)
        #expect(pods[4_999].name == "job-4999")
        #expect(pods[119].lastContainerFinishedAt == date("2026-11-29T05:59:00Z"))
        #expect(pods[60].lastContainerFinishedAt == date("2026-11-29T05:01:00Z"))
    }
}

@Suite("Timestamps")
struct TimestampTests {
    @Test("finishedAt times parse as Foundation reads RFC 3339, and bad ones do not")
    func parserAgreesWithFoundation() {
        let foundation = ISO8601DateFormatter()
        foundation.formatOptions = [.withInternetDateTime]
        let samples = [
            "1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2024-02-29T12:00:00Z", "2026-11-29T07:30:00Z",
            "2026-12-31T23:59:59Z", "2100-03-01T00:00:00Z", "2399-12-31T00:00:01Z", "2400-02-29T00:00:00Z",
            "2026-11-29T07:30:00+02:00", "2026-11-29T07:30:00-05:30",
        ]
        for sample in samples {
            #expect(Timestamps.parse(sample) != nil, "\(sample)")
            #expect(Timestamps.parse(sample) == foundation.date(from: sample), "\(sample)")
        }
        #expect(Timestamps.parse("2026-11-29T07:30:00.5Z")?.timeIntervalSince1970 == 1_795_937_400.5)
        for other in ["2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-29T24:00:00Z", "yesterday", "", "2026-11-29T07:30:00"] {
            #expect(Timestamps.parse(other) == nil, "\(other)")
        }
    }
}
