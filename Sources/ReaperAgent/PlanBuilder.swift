import Foundation
import Logging
import NodeDiscovery
import PodManifests
import PodSources
import ReaperCore
import SystemCalls

/// The node as one pass sees it: the inputs of the reconciler and its plan.
public struct NodeSnapshot: Sendable {
    public var inventory: NodeInventory
    public var manifests: PodSnapshot
    public var plan: Plan
}

/// Discover, ask the pod source, reconcile: the shared front half of
/// `--plan`, `--once`, the daemon's cycle and the socket API.
public struct PlanBuilder: Sendable {
    public var configuration: AgentConfiguration
    public var policy: Policy
    public var mountInfoPath: String
    /// Where pods come from; asked for the plan and again at every last check.
    public var pods: any PodSource
    /// The pod liveness check; one per process, so a missing tree is reported once.
    public var podCgroups: PodCgroups
    /// Measures the volumes' filesystems for pressure mode (the daemon keeps
    /// one for its hysteresis; one-shot runs get a fresh one).
    public var pressureGauge: DiskPressureGauge?

    /// `pods` nil: the manifest files under `configuration.manifests`, trusted
    /// once left alone for `manifestSettleTime` (tests shorten it).
    public init(
        configuration: AgentConfiguration, policy: Policy, pods: (any PodSource)? = nil, mountInfoPath: String = "/proc/self/mountinfo",
        manifestSettleTime: TimeInterval = ManifestReader.defaultSettleTime, podCgroups: PodCgroups? = nil
    ) {
        self.configuration = configuration
        self.policy = policy
        self.mountInfoPath = mountInfoPath
        self.pods = pods ?? FilesPodSource(
            path: configuration.manifests, settleTime: manifestSettleTime, maxFileBytes: configuration.maxManifestBytes
        )
        self.podCgroups = podCgroups ?? configuration.podCgroups()
        pressureGauge = DiskPressureGauge(kubeletRoot: configuration.kubeletRoot, kubeletConfig: configuration.kubeletConfig, mountInfoPath: mountInfoPath)
    }

    /// Now on the boot clock, for orphan confirmation; tests give their own
    /// (a boot clock cannot be stepped), nil when the boot ID is unreadable.
    public var bootClock: @Sendable () -> BootInstant? = {
        BootClock.bootID().map { BootInstant(bootID: $0, seconds: BootClock.seconds()) }
    }

    /// The pods as of now.
    public func readManifests() -> PodSnapshot {
        pods.currentSnapshot()
    }

    /// One pass, asking for access records once the volumes on disk are known
    /// (a replaced store covers volumes it never saw with its clock floor);
    /// `now` is taken after discovery so a slow walk cannot make volumes look older.
    ///
    /// `observations` holds the orphan sightings of earlier passes: they go
    /// into the plan, and this pass's sightings are recorded after it. Without
    /// a log, or when it cannot be read, no orphan is confirmed. `scans`: the
    /// daemon's scan cache for this pass (one-shot runs walk every volume).
    public func build(
        accessFor access: ([String]) throws -> [String: AccessRecord], observations: (any OrphanObservationLog)? = nil,
        scans: (any VolumeScanSource)? = nil, logger: Logger, clock: () -> Date = Date.init
    ) throws -> NodeSnapshot {
        let discoverer = NodeDiscoverer(kubeletRoot: configuration.kubeletRoot, mountInfoPath: mountInfoPath)
        let manifests = readManifests()
        // The network sources log their problems once per change of state.
        for error in manifests.errors where manifests.source == .files {
            logger.error("manifest unreadable; orphans are kept", metadata: ["file": "\(error.file)", "error": "\(error.message)"])
        }
        let inventory = try discoverer.discover(logger: logger, scans: scans)
        for error in inventory.errors {
            logger.warning("part of the kubelet tree is unreadable", metadata: ["error": "\(error)"])
        }
        let paths = inventory.pods.flatMap { $0.volumes.map(\.path) }
        let sightings = readObservations(observations, logger: logger)
        let liveness = podCgroups.survey(pods: inventory.pods.map(\.uid), logger: logger)
        let now = clock()
        let input = ReconcileInput(
            inventory: inventory, manifests: manifests, access: try access(paths), policy: policy, now: now,
            orphanObservations: sightings, boot: bootClock(), liveness: liveness, pressure: pressureGauge?.assess(policy: policy, inventory: inventory, now: now, logger: logger)
        )
        let plan = Reconciler.plan(input)
        if let observations {
            do {
                try observations.recordOrphanObservations(OrphanConfirmation.update(after: input))
            } catch {
                logger.error("could not record orphan observations; orphans wait longer", metadata: ["error": "\(error)"])
            }
        }
        return NodeSnapshot(inventory: inventory, manifests: manifests, plan: plan)
    }

    private func readObservations(_ log: (any OrphanObservationLog)?, logger: Logger) -> [String: OrphanObservation] {
        guard let log else { return [:] }
        do {
            return try log.orphanObservations()
        } catch {
            logger.error("orphan observations unreadable; no orphan is confirmed in this pass", metadata: ["error": "\(error)"])
            return [:]
        }
    }
}

extension AgentConfiguration {
    /// The pod liveness check as the node describes it: the cgroup and /proc
    /// roots, and the kubelet config's `cgroupDriver` and `cgroupRoot` (read now).
    public func podCgroups() -> PodCgroups {
        PodCgroups(root: cgroupRoot, procRoot: procRoot, kubelet: KubeletConfigFile.cgroupSettings(path: kubeletConfig))
    }
}
