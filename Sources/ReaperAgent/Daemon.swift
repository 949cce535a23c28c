import AccessStore
import Foundation
import Logging
import PodSources
import Prometheus
import ReaperCore
import ServiceLifecycle
import SocketAPI
import SystemCalls
import SystemdIntegration
import VolumeWatcher

/// `volume-reaper run`: the watcher, the access store, the reconciler and the
/// socket API as one `ServiceGroup`. SIGTERM/SIGINT stop it gracefully (store
/// flushed), SIGHUP reloads the policy and re-reads the manifests.
public enum Daemon {
    public static func run(
        configuration: AgentConfiguration, policy: Policy, policySource: String, dryRun: Bool,
        inheritedListenerFD: Int32?, logger: Logger
    ) async throws {
        // Before the store: a second agent's session would restart the clocks.
        let instance = try AgentInstanceLock.acquire(stateDirectory: configuration.stateDir)
        defer { instance.release() }
        // Opening (and perhaps migrating) SQLite blocks: off the cooperative pool.
        let (store, session) = try await BlockingWork(label: "volume-reaper.store-open").run {
            let store = try AccessStore(directory: configuration.stateDir, logger: logger)
            return (store, try store.beginSession(at: Date(), maxUnobservedGap: policy.idle.maxUnobservedGap))
        }
        let settings = configuration.podSourceSettings
        let pods: any PodSource
        var podService: (any Service)?
        var podChanges: AsyncStream<Void>?
        switch settings.kind {
        case .files:
            pods = FilesPodSource(settings: settings, logger: logger)
        case .apiserver:
            let source = APIServerPodSource(settings: settings, logger: logger)
            (pods, podService, podChanges) = (source, source, source.changes)
        case .kubelet:
            let source = KubeletPodSource(settings: settings, logger: logger)
            (pods, podService, podChanges) = (source, source, source.changes)
        }
        let watcher = VolumeWatcher(
            kubeletRoot: configuration.kubeletRoot, manifestsPath: settings.kind == .files ? configuration.manifests : nil,
            options: WatcherOptions(
                maxWatches: configuration.maxWatches, watchReads: configuration.watchReads,
                pollInterval: AgentConfiguration.pacing(configuration.pollInterval)
            ),
            logger: logger
        )
        let registry = PrometheusCollectorRegistry()
        let notifier = SystemdNotifier()
        let controller = AgentController(
            configuration: configuration, policy: policy, dryRun: dryRun, store: store, pods: pods,
            session: session, watcher: watcher, metrics: AgentMetricsRecorder(registry: registry), notifier: notifier, logger: logger
        )
        let inherited = inheritedListenerFD
        if inherited != nil {
            logger.info("using the socket passed by systemd", metadata: ["socket": "\(configuration.socket)"])
        }
        let api = try APIServer(
            configuration: APIServerConfiguration(
                socketPath: configuration.socket, socketGroup: configuration.socketGroup, inheritedListenerFD: inherited
            ),
            provider: controller, registry: registry, logger: logger
        )
        // The opt-in TCP listener for Prometheus: the same registry and
        // provider, only `/metrics` and `/healthz`, the same limits.
        let metricsListener = try configuration.metricsListen.map { address in
            try APIServer(
                configuration: .metricsListener(address), provider: controller, registry: registry, logger: logger
            )
        }
        logger.info("volume-reaper starting", metadata: [
            "kubelet_root": "\(configuration.kubeletRoot)", "pod_source": "\(settings.kind.rawValue)", "pods_from": "\(pods.status().endpoint)",
            "policy": "\(policySource)", "state_dir": "\(configuration.stateDir)", "dry_run": "\(dryRun || configuration.dryRun)",
        ])
        // Stopped in reverse order: the reconciler first, the store's flush last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: AccessFlushService(controller: controller, interval: AgentConfiguration.pacing(configuration.flushInterval))),
            .init(service: watcher),
        ]
        if let podService { services.append(.init(service: podService)) }
        if let metricsListener { services.append(.init(service: metricsListener)) }
        services += [
            .init(service: api),
            .init(service: ReconcileService(
                controller: controller, api: api, podChanges: podChanges ?? watcher.manifestChanges,
                interval: AgentConfiguration.pacing(configuration.reconcileInterval)
            )),
            .init(service: ShutdownDeadline(logger: logger)),
        ]
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await group.run()
    }
}
