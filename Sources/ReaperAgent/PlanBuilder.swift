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

    public init(configuration: AgentConfiguration, policy: Policy, mountInfoPath: String = "/proc/self/mountinfo") {
        self.configuration = configuration
        self.policy = policy
        self.mountInfoPath = mountInfoPath
    }

    /// One pass, asking for access records once the volumes on disk are known
    /// (a replaced store covers volumes it never saw with its clock floor);
    /// `now` is taken after discovery so a slow walk cannot make volumes look older.
    public func build(
        accessFor access: ([String]) throws -> [String: AccessRecord], logger: Logger, clock: () -> Date = Date.init
    ) throws -> NodeSnapshot {
        let discoverer = NodeDiscoverer(kubeletRoot: configuration.kubeletRoot, mountInfoPath: mountInfoPath)
        let manifests = ManifestReader.read(path: configuration.manifests, maxFileBytes: configuration.maxManifestBytes)
        for error in manifests.errors {
            logger.error("manifest unreadable; orphans are kept", metadata: ["file": "\(error.file)", "error": "\(error.message)"])
        }
        let inventory = try discoverer.discover(logger: logger)
        for error in inventory.errors {
            logger.warning("part of the kubelet tree is unreadable", metadata: ["error": "\(error)"])
        }
        let paths = inventory.pods.flatMap { $0.volumes.map(\.path) }
        let plan = Reconciler.plan(ReconcileInput(
            inventory: inventory, manifests: manifests, access: try access(paths), policy: policy, now: clock()
        ))
        return NodeSnapshot(inventory: inventory, manifests: manifests, plan: plan)
    }
}
