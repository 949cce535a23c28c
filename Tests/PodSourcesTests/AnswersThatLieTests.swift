import ClusterAccess
import Foundation
import KubeTestServer
import Logging
@testable import PodSources
import ReaperCore
import Testing
import TestSupport

/// Issue 18, items 2 to 4: answers that look like the node's pod list but
/// are not all of it. Each must leave a view that vouches for no orphan, or
/// be read to its end.
@Suite("Pod answers that lie: pages, not-a-list, bad and duplicate UIDs")
struct AnswersThatLieTests {
    /// The node's pods as one unpaginated LIST gives them.
    static func nodeUIDs(_ cluster: TestCluster) async -> Set<String> {
        let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
        await source.listOnce()
        return Set(source.currentSnapshot().pods.map(\.uid))
    }

    static func kubeletSettings(_ cluster: TestCluster) -> PodSourceSettings {
        var settings = cluster.settings
        settings.kind = .kubelet
        settings.kubeletURL = cluster.server.url
        return settings
    }

    /// A pod object as a LIST item or a `/pods` item, with `uid` and `phase`.
    static func podObject(uid: String, name: String, phase: String, annotations: [String: String] = [:]) -> [String: Any] {
        [
            "metadata": ["name": name, "namespace": "batch", "uid": uid, "resourceVersion": "5", "annotations": annotations],
            "spec": ["nodeName": CapturedPods.nodeName, "containers": [["name": "main", "image": "busybox"]]],
            "status": ["phase": phase],
        ]
    }

    static func podList(_ items: [[String: Any]], resourceVersion: String? = "1234") -> Data {
        var metadata: [String: Any] = [:]
        if let resourceVersion { metadata["resourceVersion"] = resourceVersion }
        return try! JSONSerialization.data(withJSONObject: ["kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": items])
    }

    // MARK: Item 2: pagination

    @Test("a LIST cut into pages is read page by page (continue, same field selector) before the view is replaced")
    func followsContinue() async throws {
        try await TestCluster.with { cluster in
            let all = await Self.nodeUIDs(cluster)
            #expect(all.count >= 3)
            let before = cluster.server.listCount
            cluster.server.setForcedPageSize(1)
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            await source.listOnce()
            let snapshot = source.currentSnapshot()
            #expect(snapshot.errors.isEmpty, "\(snapshot.errors)")
            #expect(snapshot.isComplete)
            #expect(Set(snapshot.pods.map(\.uid)) == all, "pods on the unread pages were taken as gone")
            let pages = cluster.server.requests.filter { $0.kind == .list }.dropFirst(before)
            #expect(pages.count == all.count)
            #expect(pages.dropFirst().allSatisfy { $0.query["continue"]?.isEmpty == false })
            #expect(pages.allSatisfy { $0.query["fieldSelector"] == "spec.nodeName=\(CapturedPods.nodeName)" })
            #expect(snapshot.resourceVersion == String(cluster.server.resourceVersion))
        }
    }

    @Test("a 410 on a continue relists from the first page; the view is never a part of the list")
    func continueExpired() async throws {
        try await TestCluster.with { cluster in
            let all = await Self.nodeUIDs(cluster)
            cluster.server.setForcedPageSize(1)
            cluster.server.expireNextContinues(1)
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            await source.listOnce()
            #expect(Set(source.currentSnapshot().pods.map(\.uid)) == all)
            #expect(source.currentSnapshot().isComplete)
            let lists = cluster.server.requests.filter { $0.kind == .list }
            #expect(lists.contains { $0.status == 410 })
            #expect(lists.last { $0.query["continue"] == nil }.map { _ in true } == true)

            // Every continue expires: no page alone may stand for the list.
            cluster.server.expireNextContinues(1000)
            let failing = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            await failing.listOnce()
            let snapshot = failing.currentSnapshot()
            #expect(!snapshot.synced && !snapshot.isComplete)
            #expect(snapshot.pods.isEmpty, "a first page was taken as the list")
        }
    }

    @Test("more pages than the bound: an error, and no page stands for the list")
    func pageBound() async throws {
        try await TestCluster.with { cluster in
            cluster.server.setForcedPageSize(1)
            var settings = cluster.settings
            settings.maxListPages = 2
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            await source.listOnce()
            let snapshot = source.currentSnapshot()
            #expect(!snapshot.synced && snapshot.pods.isEmpty)
            #expect(source.status().problemKind == "bad-answer")
            #expect(source.status().problem?.contains("2 pages") == true, "\(source.status().problem ?? "")")
        }
    }

    // MARK: Item 3: not a list

    @Test("a LIST answered with a single Pod, a Status or a List is bad-answer, never the node's list", arguments: ["pod", "status", "list"])
    func listNotAPodList(_ shape: String) async throws {
        try await TestCluster.with { cluster in
            let pod = Self.podObject(uid: "5e5613d6-fccb-40d6-967b-447697d4d871", name: "only", phase: "Running")
            let body: [String: Any]
            switch shape {
            case "pod": body = pod.merging(["kind": "Pod", "apiVersion": "v1"]) { $1 }
            case "status": body = ["kind": "Status", "apiVersion": "v1", "metadata": [String: Any](), "status": "Success", "code": 200]
            default: body = ["kind": "List", "apiVersion": "v1", "metadata": ["resourceVersion": "7"], "items": [pod.merging(["kind": "Pod", "apiVersion": "v1"]) { $1 }]]
            }
            cluster.server.setListAnswer(try JSONSerialization.data(withJSONObject: body))
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            await source.listOnce()
            let snapshot = source.currentSnapshot()
            #expect(!snapshot.synced && !snapshot.isComplete && snapshot.pods.isEmpty, "\(shape) was taken as the list")
            #expect(source.status().problemKind == "bad-answer")
            #expect(source.status().problem?.contains("PodList") == true, "\(source.status().problem ?? "")")
        }
    }

    @Test("the kubelet's /pods answered with a single Pod is bad-answer")
    func kubeletSinglePod() async throws {
        try await TestCluster.with { cluster in
            let pod = Self.podObject(uid: "5e5613d6-fccb-40d6-967b-447697d4d871", name: "only", phase: "Running")
            cluster.server.setKubeletPods(try JSONSerialization.data(withJSONObject: pod.merging(["kind": "Pod", "apiVersion": "v1"]) { $1 }))
            let source = KubeletPodSource(settings: Self.kubeletSettings(cluster), logger: TestCluster.logger)
            await source.pollOnce()
            let snapshot = source.currentSnapshot()
            #expect(!snapshot.synced && snapshot.pods.isEmpty)
            #expect(source.status().problemKind == "bad-answer")
            // The real kubelet document (items without kind, top level PodList) still reads.
            try cluster.server.setKubeletPods(file: CapturedPods.path(CapturedPods.kubeletPods))
            let good = KubeletPodSource(settings: Self.kubeletSettings(cluster), logger: TestCluster.logger)
            await good.pollOnce()
            #expect(good.currentSnapshot().synced && !good.currentSnapshot().pods.isEmpty, "\(good.currentSnapshot().errors)")
        }
    }

    @Test("a UID the kubelet would not name a directory by (upper case, padded) makes the answer an error naming the field",
          arguments: ["5E5613D6-FCCB-40D6-967B-447697D4D871", " 5e5613d6-fccb-40d6-967b-447697d4d871", "5e5613d6-fccb-40d6-967b-447697d4d871 ", "0123456789abcdef0123456789abcdef"])
    func badUID(_ uid: String) async throws {
        try await TestCluster.with { cluster in
            cluster.server.setListAnswer(Self.podList([Self.podObject(uid: uid, name: "odd", phase: "Running")]))
            let source = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
            await source.listOnce()
            #expect(!source.currentSnapshot().synced && source.currentSnapshot().pods.isEmpty)
            #expect(source.status().problemKind == "bad-answer")
            #expect(source.status().problem?.contains("metadata.uid") == true, "\(source.status().problem ?? "")")

            cluster.server.setKubeletPods(Self.podList([Self.podObject(uid: uid.uppercased(), name: "odd", phase: "Running")], resourceVersion: nil))
            let kubelet = KubeletPodSource(settings: Self.kubeletSettings(cluster), logger: TestCluster.logger)
            await kubelet.pollOnce()
            #expect(!kubelet.currentSnapshot().synced, "the kubelet source took \(uid.uppercased())")
            #expect(kubelet.status().problem?.contains("metadata.uid") == true, "\(kubelet.status().problem ?? "")")
        }
    }

    @Test("the kubelet source takes a static pod's config hash as its UID")
    func kubeletConfigHash() async throws {
        try await TestCluster.with { cluster in
            cluster.server.setKubeletPods(Self.podList([Self.podObject(uid: "0123456789abcdef0123456789abcdef", name: "static", phase: "Running")], resourceVersion: nil))
            let kubelet = KubeletPodSource(settings: Self.kubeletSettings(cluster), logger: TestCluster.logger)
            await kubelet.pollOnce()
            #expect(kubelet.currentSnapshot().synced, "\(kubelet.currentSnapshot().errors)")
        }
    }

    @Test("a watch event with an upper-case UID unsyncs the view (it relists)")
    func watchBadUID() async throws {
        try await TestCluster.with { cluster in
            var settings = cluster.settings
            settings.stallTimeout = 60
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            try await TestCluster.running(source) {
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 && source.currentSnapshot().synced })
                cluster.server.setFailure(500, for: [.list])
                let object = Self.podObject(uid: "AAAAAAAA-0000-0000-0000-000000000000", name: "odd", phase: "Succeeded")
                try cluster.server.putPod(json: try JSONSerialization.data(withJSONObject: object))
                #expect(await waitUntil(timeout: 10, every: .milliseconds(20)) { !source.currentSnapshot().synced })
                #expect(!source.currentSnapshot().pods.contains { $0.uid.lowercased() == "aaaaaaaa-0000-0000-0000-000000000000" })
                #expect(source.status().failures["bad-answer", default: 0] >= 1, "\(source.status().failures)")
            }
        }
    }

    // MARK: Item 4: duplicate UIDs

    static let duplicated = "0961a396-5fff-45fe-a970-19b2aac96e5d"

    static func duplicateList(resourceVersion: String?) -> Data {
        podList([
            podObject(uid: duplicated, name: "done", phase: "Succeeded"),
            podObject(uid: duplicated, name: "kept", phase: "Running", annotations: ["volume-reaper.io/keep": "true"]),
            podObject(uid: "11111111-2222-3333-4444-555555555555", name: "other", phase: "Running"),
        ], resourceVersion: resourceVersion)
    }

    @Test("duplicate UIDs in a LIST or /pods: every document kept, the answer flagged, counted, and vouching for no orphan", arguments: ["apiserver", "kubelet"])
    func duplicateUIDs(_ kind: String) async throws {
        try await TestCluster.with { cluster in
            let source: any PodSource
            if kind == "apiserver" {
                cluster.server.setListAnswer(Self.duplicateList(resourceVersion: "1234"))
                let api = APIServerPodSource(settings: cluster.settings, logger: TestCluster.logger)
                await api.listOnce()
                source = api
            } else {
                cluster.server.setKubeletPods(Self.duplicateList(resourceVersion: nil))
                let kubelet = KubeletPodSource(settings: Self.kubeletSettings(cluster), logger: TestCluster.logger)
                await kubelet.pollOnce()
                source = kubelet
            }
            let snapshot = source.currentSnapshot()
            let documents = snapshot.pods(matching: Self.duplicated, kind: .uid)
            #expect(Set(documents.map(\.phase)) == ["Succeeded", "Running"], "the first document won")
            #expect(documents.contains { $0.annotations["volume-reaper.io/keep"] == "true" })
            #expect(!snapshot.isComplete, "an answer with a duplicate UID vouched for absence")
            #expect(snapshot.errors.contains { $0.message.contains(Self.duplicated) }, "\(snapshot.errors)")
            #expect(source.status().failures["duplicate-uid"] == 1, "\(source.status().failures)")
            #expect(source.status().pods == 3)
        }
    }
}
