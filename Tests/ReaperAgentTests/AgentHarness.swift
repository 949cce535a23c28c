import AccessStore
import Foundation
import Logging
import NodeDiscovery
import PodSources
import Prometheus
import Reaper
import ReaperCore
import SocketAPI
import Synchronization
import SystemdIntegration
import Testing
import TestSupport
import VolumeWatcher
@testable import ReaperAgent

/// A failed setup step, with the command and what it said.
struct SetupError: Error, CustomStringConvertible {
    var description: String
}

@discardableResult
func sh(_ command: String) throws -> String {
    let result = try ChildProcess.shell(command)
    guard result.status == 0 else { throw SetupError(description: "`\(command)` exited \(result.status): \(result.stderr)") }
    return result.stdout
}

func q(_ path: String) -> String { "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'" }

let testLogger: Logger = {
    var logger = Logger(label: "reaper-agent-test")
    logger.logLevel = .critical
    return logger
}()

/// The daemon's real parts on a temp node: a kubelet tree, a manifests file,
/// an access store, a running watcher and the controller that reconciles.
final class AgentHarness: Sendable {
    let directory: TemporaryDirectory
    let configuration: AgentConfiguration
    let policy: Policy
    let watcher: VolumeWatcher
    let controller: AgentController

    var pods: String { configuration.kubeletRoot + "/pods" }

    static func uid(_ number: Int) -> String { String(format: "5e1f0000-0000-4000-8000-%012d", number) }

    /// `pods`: UID and phase of each pod the manifests list (a Job's pod).
    init(_ label: String, pods: [(uid: String, phase: String)], cgroupRoot: String? = nil) throws {
        directory = try TemporaryDirectory(label)
        var configuration = AgentConfiguration()
        configuration.kubeletRoot = directory.appending("kubelet")
        configuration.manifests = directory.appending("manifests/pods.json")
        configuration.stateDir = directory.appending("state")
        configuration.socket = directory.appending("api.sock")
        // An empty kubelet cgroup tree (no pod runs) unless the test brings
        // one: without a tree every orphan is kept (liveness-unknown).
        configuration.cgroupRoot = cgroupRoot ?? directory.appending("cgroup")
        configuration.procRoot = directory.appending("proc")
        try FileManager.default.createDirectory(atPath: directory.appending("cgroup/kubepods.slice"), withIntermediateDirectories: true)
        self.configuration = configuration
        policy = Policy.defaults
        try FileManager.default.createDirectory(atPath: configuration.kubeletRoot + "/pods", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.appending("manifests"), withIntermediateDirectories: true)
        let items = pods.map { pod in
            """
            {"metadata": {"uid": "\(pod.uid)", "name": "job-\(pod.uid.suffix(4))", "namespace": "batch",
              "ownerReferences": [{"kind": "Job", "name": "job", "apiVersion": "batch/v1", "uid": "x"}]},
             "status": {"phase": "\(pod.phase)"}}
            """
        }
        try Data(#"{"kind": "PodList", "apiVersion": "v1", "items": [\#(items.joined(separator: ","))]}"#.utf8)
            .write(to: URL(fileURLWithPath: configuration.manifests))
        let store = try AccessStore(directory: configuration.stateDir, logger: testLogger)
        let session = try store.beginSession(at: Date(), maxUnobservedGap: policy.idle.maxUnobservedGap)
        watcher = VolumeWatcher(
            kubeletRoot: configuration.kubeletRoot, manifestsPath: configuration.manifests,
            options: WatcherOptions(pollInterval: .milliseconds(200)), logger: testLogger
        )
        controller = AgentController(
            configuration: configuration, policy: policy, dryRun: false, store: store,
            pods: FilesPodSource(path: configuration.manifests), session: session, watcher: watcher,
            metrics: AgentMetricsRecorder(registry: PrometheusCollectorRegistry()), notifier: SystemdNotifier(environment: [:]), logger: testLogger
        )
    }

    /// An emptyDir volume with a file, every timestamp three hours old (idle by mtime).
    @discardableResult
    func idleVolume(_ uid: String, _ name: String) throws -> String {
        let path = pods + "/" + uid + "/volumes/kubernetes.io~empty-dir/" + name
        try sh("mkdir -p \(q(path))/sub && echo data > \(q(path))/data && echo more > \(q(path))/sub/log")
        let stamp = Int(Date().timeIntervalSince1970) - 3 * 3600
        try sh("find \(q(pods + "/" + uid)) -exec touch -h -d @\(stamp) {} +")
        return path
    }

    /// One real reap cycle (plan, last checks, deletions) with the controller's
    /// access reads; `beforeAccessRead` runs before each read with its number
    /// (1 is the plan's, 2 the first last check's).
    func reapCycle(beforeAccessRead: @escaping @Sendable (Int) -> Void = { _ in }) throws -> ReapCycle.Result {
        let calls = Mutex(0)
        let controller = controller
        let policy = policy
        let builder = PlanBuilder(configuration: configuration, policy: policy, pods: controller.pods, podCgroups: controller.podCgroups)
        return try ReapCycle(builder: builder, dryRun: false).run(
            access: { paths in
                beforeAccessRead(calls.withLock { count in
                    count += 1
                    return count
                })
                return try controller.accesses.records(covering: paths, policy: policy)
            },
            logger: testLogger
        )
    }

    /// Runs the watcher while `body` runs.
    func withWatcher<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let watcher = watcher
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await watcher.run() }
            await watcher.waitUntilReady()
            do {
                let result = try await body()
                group.cancelAll()
                try await group.waitForAll()
                return result
            } catch {
                group.cancelAll()
                try? await group.waitForAll()
                throw error
            }
        }
    }

    func remove() { directory.remove() }
}

extension ReapReport {
    func outcome(_ path: String) -> ReapOutcome? { outcomes.first { $0.verdict.path == path } }
}

extension Plan {
    func verdict(_ path: String) -> VolumeVerdict? { volumes.first { $0.path == path } }
}
