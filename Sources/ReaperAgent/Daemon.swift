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
        var clusterEvents: EventRecorder?
        switch settings.kind {
        case .files:
            pods = FilesPodSource(settings: settings, logger: logger)
        case .apiserver:
            let source = APIServerPodSource(settings: settings, logger: logger)
            (pods, podService, podChanges) = (source, source, source.changes)
            if settings.events { clusterEvents = source.eventRecorder() }
        case .kubelet:
            let source = KubeletPodSource(settings: settings, logger: logger)
            (pods, podService, podChanges) = (source, source, source.changes)
        }
        if settings.events && settings.kind != .apiserver {
            logger.notice("podSource.events applies to the apiserver source only; no Kubernetes Events are written", metadata: [
                "pod_source": "\(settings.kind.rawValue)",
            ])
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
        // One recorder for the controller and both listeners, so that its
        // scrape hooks (the pod source, the Event recorder) run on each scrape.
        let metrics = AgentMetricsRecorder(registry: registry)
        let controller = AgentController(
            configuration: configuration, policy: policy, dryRun: dryRun, store: store, pods: pods,
            session: session, watcher: watcher, metrics: metrics, notifier: notifier, logger: logger,
            clusterEvents: clusterEvents
        )
        let inherited = inheritedListenerFD
        if inherited != nil {
            logger.info("using the socket passed by systemd", metadata: ["socket": "\(configuration.socket)"])
        }
        let api = try APIServer(
            configuration: APIServerConfiguration(
                socketPath: configuration.socket, socketGroup: configuration.socketGroup, inheritedListenerFD: inherited
            ),
            provider: controller, registry: registry, recorder: metrics, logger: logger
        )
        // The opt-in TCP listener for Prometheus: the same registry and
        // provider, only `/metrics` and `/healthz`, the same limits.
        let metricsListener = try configuration.metricsListen.map { address in
            try APIServer(
                configuration: .metricsListener(address), provider: controller, registry: registry, recorder: metrics, logger: logger
            )
        }
        logger.info("volume-reaper starting", metadata: [
            "kubelet_root": "\(configuration.kubeletRoot)", "pod_source": "\(settings.kind.rawValue)", "pods_from": "\(pods.status().endpoint)",
            "policy": "\(policySource)", "state_dir": "\(configuration.stateDir)", "dry_run": "\(dryRun || configuration.dryRun)",
            "kubernetes_events": "\(clusterEvents != nil)",
        ])
        // Stopped in reverse order: the reconciler first, the store's flush last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: AccessFlushService(controller: controller, interval: AgentConfiguration.pacing(configuration.flushInterval))),
            .init(service: watcher),
        ]
        if let podService { services.append(.init(service: podService)) }
        // After the pod source, whose client it writes with: it stops first.
        if let clusterEvents { services.append(.init(service: clusterEvents)) }
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
