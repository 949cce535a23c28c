import AccessStore
import Foundation
import Logging
import Prometheus
import ReaperCore
import ServiceLifecycle
import SocketAPI
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
        let store = try AccessStore(directory: configuration.stateDir, logger: logger)
        let session = try store.beginSession(at: Date(), maxUnobservedGap: policy.idle.maxUnobservedGap)
        let watcher = VolumeWatcher(
            kubeletRoot: configuration.kubeletRoot, manifestsPath: configuration.manifests,
            options: WatcherOptions(
                maxWatches: configuration.maxWatches, watchReads: configuration.watchReads,
                pollInterval: AgentConfiguration.pacing(configuration.pollInterval)
            ),
            logger: logger
        )
        let registry = PrometheusCollectorRegistry()
        let notifier = SystemdNotifier()
        let controller = AgentController(
            configuration: configuration, policy: policy, dryRun: dryRun, store: store,
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
        logger.info("volume-reaper starting", metadata: [
            "kubelet_root": "\(configuration.kubeletRoot)", "manifests": "\(configuration.manifests)",
            "policy": "\(policySource)", "state_dir": "\(configuration.stateDir)", "dry_run": "\(dryRun)",
        ])
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [
                .init(service: AccessFlushService(controller: controller, interval: AgentConfiguration.pacing(configuration.flushInterval))),
                .init(service: watcher),
                .init(service: api),
                .init(service: ReconcileService(
                    controller: controller, api: api, interval: AgentConfiguration.pacing(configuration.reconcileInterval)
                )),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        ))
        try await group.run()
    }
}
