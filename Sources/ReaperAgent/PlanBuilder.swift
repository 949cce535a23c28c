import Foundation
import Logging
import NodeDiscovery
import PodManifests
import ReaperCore

/// The node as one pass sees it: the inputs of the reconciler and its plan.
public struct NodeSnapshot: Sendable {
    public var inventory: NodeInventory
    public var manifests: ManifestSnapshot
    public var plan: Plan
}

/// Discover, read manifests, reconcile: the shared front half of `--plan`,
/// `--once`, the daemon's cycle and the socket API.
public struct PlanBuilder: Sendable {
    public var configuration: AgentConfiguration
    public var policy: Policy
    public var mountInfoPath: String
    /// How long a manifest file must be left alone before it is trusted
    /// (`ManifestReader.defaultSettleTime`; tests shorten it).
    public var manifestSettleTime: TimeInterval
    /// The pod liveness check; one per process, so a missing tree is reported once.
    public var podCgroups: PodCgroups

    public init(
        configuration: AgentConfiguration, policy: Policy, mountInfoPath: String = "/proc/self/mountinfo",
        manifestSettleTime: TimeInterval = ManifestReader.defaultSettleTime, podCgroups: PodCgroups? = nil
    ) {
        self.configuration = configuration
        self.policy = policy
        self.mountInfoPath = mountInfoPath
        self.manifestSettleTime = manifestSettleTime
        self.podCgroups = podCgroups ?? PodCgroups(root: configuration.cgroupRoot)
    }

    /// The manifests as of now.
    public func readManifests() -> ManifestSnapshot {
        ManifestReader.read(path: configuration.manifests, settle: manifestSettleTime, maxFileBytes: configuration.maxManifestBytes)
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
        for error in manifests.errors {
            logger.error("manifest unreadable; orphans are kept", metadata: ["file": "\(error.file)", "error": "\(error.message)"])
        }
        let inventory = try discoverer.discover(logger: logger, scans: scans)
        for error in inventory.errors {
            logger.warning("part of the kubelet tree is unreadable", metadata: ["error": "\(error)"])
        }
        let paths = inventory.pods.flatMap { $0.volumes.map(\.path) }
        let sightings = readObservations(observations, logger: logger)
        let liveness = podCgroups.survey(pods: inventory.pods.map(\.uid), logger: logger)
        let input = ReconcileInput(
            inventory: inventory, manifests: manifests, access: try access(paths), policy: policy, now: clock(),
            orphanObservations: sightings, liveness: liveness
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
