import Foundation
import KubeTestServer
import ReaperCore
import Testing
import TestSupport

/// Issue 19, item 7: with `podSource.events: true` the daemon reports its
/// reaps as `events.k8s.io/v1` Events, which the test API server keeps as
/// kube-apiserver would; `kubectl describe pod` would show them.
@Suite("volume-reaper run: Kubernetes Events", .serialized)
struct ClusterEventsDaemonTests {
    static let metricsServer = PodSourceDaemonTests.metricsServer
    static let failJob = PodSourceDaemonTests.failJob

    /// The API server source's policy with `idle.after: 3s`, so that a volume
    /// made during the test is idle in a moment and a pod can be reaped twice.
    static let quickPolicy: String = {
        let text = (try? String(contentsOfFile: PodSourceDaemonTests.policy, encoding: .utf8)) ?? ""
        precondition(text.contains("\n  after: 30m"))
        let path = NSTemporaryDirectory() + "volume-reaper-events-\(getpid()).yaml"
        try? Data(text.replacingOccurrences(of: "\n  after: 30m", with: "\n  after: 3s").utf8)
            .write(to: URL(fileURLWithPath: path), options: .atomic)
        return path
    }()

    static func pod(_ uid: String) throws -> CapturedPods.Pod {
        try #require(try CapturedPods.pods(in: CapturedPods.kubectlPods).first { $0.uid == uid })
    }

    static func events(_ server: KubeTestServer, about uid: String) -> [KubeTestServer.ClusterEvent] {
        server.clusterEvents.filter { $0.regarding["uid"] == uid }
    }

    /// `volume_reaper_kubernetes_events_total{result="<result>"}` from the socket's /metrics.
    static func eventsMetric(_ socket: String, _ result: String) -> Int? {
        guard let (status, body) = try? curl(socket, "/metrics"), status == 200 else { return nil }
        let prefix = "volume_reaper_kubernetes_events_total{result=\"\(result)\"} "
        return body.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
    }

    @Test("one Event per reap, about the pod (namespace, name, uid), from volume-reaper.io/agent on the node; a second reap of the pod is a series update")
    func eventPerReapAndSeries() async throws {
        let running = try await PodSourceDaemonTests.start(dryRun: false, extraConfig: "  events: true", policy: Self.quickPolicy)
        defer { running.daemon.stop(signal: SIGKILL) }
        do {
            let server = running.server
            let failJob = try Self.pod(Self.failJob)
            let metricsServer = try Self.pod(Self.metricsServer)
            let failVolumes = try #require(running.volumes[Self.failJob])
            #expect(await waitUntil(timeout: 20) { failVolumes.allSatisfy { !FileManager.default.fileExists(atPath: $0) } })
            try server.setPhase(uid: Self.metricsServer, "Succeeded", terminateContainers: false)
            let metricsVolumes = try #require(running.volumes[Self.metricsServer])
            #expect(await waitUntil(timeout: 20) { metricsVolumes.allSatisfy { !FileManager.default.fileExists(atPath: $0) } }, "\(running.daemon.log)")
            #expect(await waitUntil(timeout: 10) {
                Self.events(server, about: Self.failJob).count == 1 && Self.events(server, about: Self.metricsServer).count == 1
            }, "\(server.clusterEvents.map(\.name))\n\(running.daemon.log)")

            for pod in [failJob, metricsServer] {
                let events = Self.events(server, about: pod.uid)
                try #require(events.count == 1, "\(pod.name): \(events.map(\.name))")
                let event = events[0]
                #expect(event.regarding == ["apiVersion": "v1", "kind": "Pod", "namespace": pod.namespace, "name": pod.name, "uid": pod.uid])
                #expect(event.namespace == pod.namespace)
                #expect(event.reportingController == "volume-reaper.io/agent")
                #expect(event.reportingInstance == CapturedPods.nodeName)
                #expect(event.type == "Normal" && event.reason == "VolumeReaped" && event.action == "Reap")
                #expect(event.seriesCount == nil && event.creates == 1 && event.patches == 0)
                // MicroTime: six fractional digits.
                #expect(event.eventTime?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z/) != nil, "\(event.eventTime ?? "none")")
                // The journald MESSAGE of each volume, joined.
                let note = try #require(event.note)
                #expect(note.hasPrefix("reaped ") && note.contains("of pod \(pod.namespace)/\(pod.name)"), "\(note)")
                for volume in running.volumes[pod.uid] ?? [] {
                    #expect(note.contains(" \(URL(fileURLWithPath: volume).lastPathComponent) of pod"), "\(note)")
                }
            }
            // The orphan's volume: no pod the API server knows; about the node.
            let node = server.clusterEvents.filter { $0.regarding["kind"] == "Node" }
            #expect(node.contains { $0.regarding["name"] == CapturedPods.nodeName && $0.namespace == "default" && $0.note?.contains("orphan pod") == true })

            // A second reap of the Failed Job within the series window.
            let extra = running.directory.appending("kubelet/pods/\(Self.failJob)/volumes/kubernetes.io~empty-dir/cache")
            try FileManager.default.createDirectory(atPath: extra, withIntermediateDirectories: true)
            try Data("x\n".utf8).write(to: URL(fileURLWithPath: extra + "/file"))
            // Idle after 3 s: a cycle asked for every 4 s (each cycle's
            // walk must not be what keeps it fresh).
            #expect(await waitUntil(timeout: 30, every: .seconds(4)) {
                _ = try? curl(running.socket, "/v1/reconcile", method: "POST")
                return !FileManager.default.fileExists(atPath: extra)
            }, "\(String(describing: try? running.verdict(extra)))\n\(running.daemon.log)")
            #expect(await waitUntil(timeout: 10) { Self.events(server, about: Self.failJob).first?.seriesCount == 2 }, "\(running.daemon.log)")
            let series = Self.events(server, about: Self.failJob)
            #expect(series.count == 1, "\(series.map(\.name))")
            #expect(series.first?.creates == 1 && series.first?.patches == 1)
            #expect(series.first?.seriesLastObservedTime?.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z/) != nil)
            #expect(Self.eventsMetric(running.socket, "sent").map { $0 >= 4 } == true)
            #expect(Self.eventsMetric(running.socket, "failed") == 0)
        }
        await running.stop()
    }

    @Test("an Events endpoint that refuses (403) or fails (500) neither stops nor delays reaping; the failure is counted and logged once", arguments: [403, 500])
    func refusedEventsKeepReaping(_ status: Int) async throws {
        let running = try await PodSourceDaemonTests.start(dryRun: false, extraConfig: "  events: true", prepare: { server in
            server.setFailure(status, for: [.events])
        })
        defer { running.daemon.stop(signal: SIGKILL) }
        do {
            let failVolumes = try #require(running.volumes[Self.failJob])
            #expect(await waitUntil(timeout: 20) { failVolumes.allSatisfy { !FileManager.default.fileExists(atPath: $0) } })
            #expect(await running.server.waitForRequests(timeout: .seconds(10)) { requests in
                requests.contains { $0.kind == .events && $0.status == status }
            })
            // The next reap comes as fast as without Events: within a watch
            // event's cycle, about 2 s alone. The bound leaves room for the
            // whole suite's load (a CI run took 10.2 s); that a reap never
            // waits for the Events writer is EventRecorderTests' boundedQueue.
            try running.server.setPhase(uid: Self.metricsServer, "Succeeded", terminateContainers: false)
            let metricsVolumes = try #require(running.volumes[Self.metricsServer])
            let started = ContinuousClock.now
            #expect(await waitUntil(timeout: 30) { metricsVolumes.allSatisfy { !FileManager.default.fileExists(atPath: $0) } }, "\(running.daemon.log)")
            #expect(ContinuousClock.now - started < .seconds(20))
            #expect(await waitUntil(timeout: 10) { (Self.eventsMetric(running.socket, "failed") ?? 0) >= 3 }, "\((try? curl(running.socket, "/metrics"))?.body ?? "")")
            #expect(running.server.clusterEvents.isEmpty)
            #expect((try? curl(running.socket, "/livez"))?.status == 200)
            let warnings = running.daemon.log.components(separatedBy: "cannot write Kubernetes Events").count - 1
            #expect(warnings == 1, "\(running.daemon.log)")
            #expect(running.daemon.log.contains("status=\(status)") || running.daemon.log.contains("\(status)"))
        }
        await running.stop()
    }
}
