import Foundation
import KubeTestServer
@testable import PodSources
import ReaperCore
import Synchronization
import Testing
import TestSupport

/// Issue 22: a watch wakes the reconciler only for a change it can see. A
/// workload that rewrites its own annotation, or a probe that moves
/// `status.conditions`, is a MODIFIED event the daemon must not reconcile on;
/// a change of phase, owner, finish time or an annotation the policy reads
/// must still reach the next plan.
@Suite("APIServerPodSource: which watch events wake the reconciler")
struct WatchWakeTests {
    /// Counts the elements of `source.changes` (the daemon's reconcile triggers).
    final class WakeCounter: Sendable {
        let count = Mutex(0)
        var value: Int { count.withLock { $0 } }
    }

    func pod(_ source: APIServerPodSource, _ uid: String) -> Pod? {
        source.currentSnapshot().pods.first { $0.uid == uid }
    }

    func annotate(_ cluster: TestCluster, _ key: String, _ value: String) throws {
        _ = try cluster.server.modifyPod(uid: TestCluster.metricsServer) { pod in
            var metadata = pod["metadata"] as? [String: Any] ?? [:]
            var annotations = metadata["annotations"] as? [String: Any] ?? [:]
            annotations[key] = value
            metadata["annotations"] = annotations
            pod["metadata"] = metadata
        }
    }

    /// Runs `body` with a synced, watching source whose list's wake-up has
    /// been counted, and the counter.
    func watching(_ body: @escaping @Sendable (TestCluster, APIServerPodSource, WakeCounter) async throws -> Void) async throws {
        try await TestCluster.with { cluster in
            var settings = cluster.settings
            settings.watchTimeout = 60
            settings.stallTimeout = 60
            let source = APIServerPodSource(settings: settings, logger: TestCluster.logger)
            source.setAnnotationKeysRead(Policy.defaults.annotationKeysRead)
            let wakes = WakeCounter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await source.run() }
                group.addTask { for await _ in source.changes { wakes.count.withLock { $0 += 1 } } }
                defer { group.cancelAll() }
                #expect(await waitUntil(every: .milliseconds(20)) { cluster.server.openWatchCount == 1 && wakes.value == 1 })
                try await body(cluster, source, wakes)
            }
        }
    }

    @Test("an annotation the reconciler does not read, or status.conditions alone: the view has the new document, no reconcile wakes")
    func unreadChanges() async throws {
        try await watching { cluster, source, wakes in
            try annotate(cluster, "example.com/build-sequence", "1")
            _ = try cluster.server.modifyPod(uid: TestCluster.metricsServer) { pod in
                var status = pod["status"] as? [String: Any] ?? [:]
                status["conditions"] = [["type": "Ready", "status": "True", "lastProbeTime": "2026-01-01T00:00:00Z"]]
                pod["status"] = status
            }
            try annotate(cluster, "example.com/build-sequence", "2")
            let version = String(cluster.server.resourceVersion)
            #expect(await waitUntil(every: .milliseconds(20)) {
                source.currentSnapshot().resourceVersion == version
                    && pod(source, TestCluster.metricsServer)?.annotations["example.com/build-sequence"] == "2"
            })
            try await Task.sleep(for: .milliseconds(300))  // a wake would be counted by now
            #expect(wakes.value == 1, "events the reconciler cannot see woke it")
        }
    }

    @Test("a change of a field the reconciler reads wakes a reconcile and is in the view it reads",
          arguments: ["phase", "owner", "last-accessed annotation", "keep annotation"])
    func readChanges(_ field: String) async throws {
        try await watching { cluster, source, wakes in
            switch field {
            case "phase":
                _ = try cluster.server.setPhase(uid: TestCluster.metricsServer, "Succeeded", terminateContainers: true)
            case "owner":
                _ = try cluster.server.modifyPod(uid: TestCluster.metricsServer) { pod in
                    var metadata = pod["metadata"] as? [String: Any] ?? [:]
                    metadata["ownerReferences"] = [["apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "x"]]
                    pod["metadata"] = metadata
                }
            case "last-accessed annotation":
                try annotate(cluster, Policy.defaults.annotation.key, "2026-01-01T00:00:00Z")
            default:
                try annotate(cluster, Policy.defaults.pods.protectAnnotation, "true")
            }
            #expect(await waitUntil(every: .milliseconds(20)) { wakes.value == 2 }, "a change of \(field) woke no reconcile")
            let seen = try #require(pod(source, TestCluster.metricsServer))
            switch field {
            case "phase": #expect(seen.phase == "Succeeded" && seen.lastContainerFinishedAt != nil)
            case "owner": #expect(seen.owners == [OwnerReference(kind: "DaemonSet", name: "agent")])
            case "last-accessed annotation": #expect(seen.annotations[Policy.defaults.annotation.key] == "2026-01-01T00:00:00Z")
            default: #expect(seen.annotations[Policy.defaults.pods.protectAnnotation] == "true")
            }
        }
    }
}
