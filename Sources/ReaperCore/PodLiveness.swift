/// What the node itself says about pods, beside the manifests: the kubelet
/// runs every pod in a cgroup named after its UID. Defence in depth (design
/// §4.4): a pod whose cgroup holds processes is never reaped, whatever the
/// manifests say.
public struct PodLiveness: Sendable, Hashable {
    /// Pod directory names (UIDs, config hashes) whose cgroup holds processes.
    public var alive: Set<String>
    /// Pods whose cgroup files could not be read: kept as inconclusive.
    public var inconclusive: Set<String>

    public init(alive: Set<String> = [], inconclusive: Set<String> = []) {
        self.alive = alive
        self.inconclusive = inconclusive
    }

    /// Why the node keeps this pod's volumes (empty: it does not).
    public func keepReasons(for uid: String) -> [Reason] {
        var reasons: [Reason] = []
        if alive.contains(uid) { reasons.append(.podAlive) }
        if inconclusive.contains(uid) { reasons.append(.inconclusive) }
        return reasons
    }
}
