/// A view that suddenly loses pods is suspect (design §5.8): a kubelet
/// restarted without its API server, a truncated answer, a server that lost
/// its cache. Counts the pods whose directories still exist that the latest
/// snapshot dropped without a DELETE event; past `limits.maxPodsLost`, or
/// past `limits.maxOrphanFraction` of the pod directories, every orphan is
/// held (`pod-view-shrank`) until a later, different snapshot agrees.
public struct PodViewLoss: Sendable, Hashable {
    /// UIDs with a directory on disk that the snapshot dropped.
    public var lost: Set<String>
    /// UID pod directories on disk.
    public var directories: Int
    public var exceedsLimits: Bool

    public init(_ input: ReconcileInput) {
        let present = Set(input.inventory.pods.lazy.filter { $0.kind == .uid }.map(\.uid))
        lost = input.manifests.droppedWithoutDelete.intersection(present)
        directories = input.inventory.pods.count
        let limits = input.policy.limits
        exceedsLimits = lost.count > limits.maxPodsLost
            || (directories > 0 && !lost.isEmpty && Double(lost.count) / Double(directories) > limits.maxOrphanFraction)
    }

    /// The plan's alert while the loss holds orphans back.
    public var alert: PlanAlert? {
        guard exceedsLimits else { return nil }
        return PlanAlert(
            code: .podViewShrank,
            message: "the pod view dropped \(lost.count) of \(directories) pods whose directories exist, without DELETE events (more than limits.maxPodsLost or limits.maxOrphanFraction): every orphan is held until a later snapshot agrees; check the pod source"
        )
    }
}
