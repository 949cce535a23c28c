/// What the node itself says about pods, beside the manifests: the kubelet
/// runs every pod in a cgroup named after its UID. Defence in depth (design
/// §4.4): a pod whose cgroup holds processes is never reaped, whatever the
/// manifests say.
public struct PodLiveness: Sendable, Hashable {
    /// Pod directory names (UIDs, config hashes) whose cgroup holds processes.
    public var alive: Set<String>
    /// Pods whose cgroup files could not be read: kept as inconclusive.
    public var inconclusive: Set<String>

    /// Why no kubelet pod cgroup tree could be found on this node (nil: it
    /// was found). Without a tree nothing says whether a pod still runs, so
    /// orphans are kept (`liveness-unknown`); a pod the view lists as
    /// terminated may still go, on the view's word (its phase is final).
    public var treeMissing: String?

    public init(alive: Set<String> = [], inconclusive: Set<String> = [], treeMissing: String? = nil) {
        self.alive = alive
        self.inconclusive = inconclusive
        self.treeMissing = treeMissing
    }

    /// Why the node keeps this pod's volumes (empty: it does not). `orphan`:
    /// the pod view does not list the pod, so only the node can say it runs.
    public func keepReasons(for uid: String, orphan: Bool) -> [Reason] {
        var reasons: [Reason] = []
        if alive.contains(uid) { reasons.append(.podAlive) }
        if inconclusive.contains(uid) { reasons.append(.inconclusive) }
        if orphan, treeMissing != nil { reasons.append(.livenessUnknown) }
        return reasons
    }
}
