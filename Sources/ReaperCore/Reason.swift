/// Why a volume is kept or reaped. Stable kebab-case codes: scripts match on
/// them, the README documents each, and `summary` is the text people read.
public enum Reason: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    // Why a volume may go.
    case podTerminated = "pod-terminated"
    case orphan = "orphan"
    case idle = "idle"
    case willUnmount = "will-unmount"
    case diskPressure = "disk-pressure"

    // The pod still needs it.
    case podRunning = "pod-running"
    case podPending = "pod-pending"
    case podPhaseUnknown = "pod-phase-unknown"
    case phaseExcluded = "phase-excluded"
    case ownerExcluded = "owner-excluded"
    case ownerDaemonSet = "owner-daemonset"
    case ownerNode = "owner-node"
    case namespaceExcluded = "namespace-excluded"
    case protected = "protected"
    case staticPod = "static-pod"
    case podAlive = "pod-alive"

    // Access.
    case recentAccess = "recent-access"
    case changedDuringScan = "changed-during-scan"
    case annotationRecent = "annotation-recent"
    case annotationInvalid = "annotation-invalid"
    case annotationMissing = "annotation-missing"
    case notObservedLongEnough = "not-observed-long-enough"

    // The disk says no.
    case mounted = "mounted"
    case lockHeld = "lock-held"
    case notEmpty = "not-empty"
    case pluginExcluded = "plugin-excluded"
    case inconclusive = "inconclusive"

    // Orphans need a trustworthy snapshot.
    case orphansDisabled = "orphans-disabled"
    case manifestsEmpty = "manifests-empty"
    case manifestsIncomplete = "manifests-incomplete"
    case manifestsStale = "manifests-stale"
    case manifestsOlderThanPod = "manifests-older-than-pod"
    case manifestsTimeInvalid = "manifests-time-invalid"
    case podSourceUnsynced = "pod-source-unsynced"
    case podSourceCannotVouch = "pod-source-cannot-vouch"
    case podViewShrank = "pod-view-shrank"
    case livenessUnknown = "liveness-unknown"
    case orphanUnconfirmed = "orphan-unconfirmed"

    // Limits of design §5.8.
    case limitMaxReaps = "limit-max-reaps"
    case limitOrphanFraction = "limit-orphan-fraction"

    // Found at the last check, right before deletion (the reaper).
    case accessedDuringReap = "accessed-during-reap"
    case podStateChanged = "pod-state-changed"

    /// What a reason is about. One exhaustive switch classifies every
    /// reason, so a new one does not compile until it is placed; `keeps`,
    /// `isTimeBased`, `allowsPressureReap` and `atLastCheck` all derive from it.
    public enum Category: Sendable, Hashable {
        /// Why a volume may go.
        case reap
        /// The disk says no: a mount, a lock, an unreadable tree, the plugin.
        case disk
        /// What the pod says of itself (phase, owner, namespace, annotations).
        case pod(timeBased: Bool)
        /// The node says the pod runs, or cannot say.
        case node
        /// Activity in the tree (`timeBased`: passes once left alone).
        case access(timeBased: Bool)
        /// The daemon has not watched the volume long enough (passes with time).
        case observation
        /// The pod view cannot vouch that a pod is gone.
        case view
        /// A plan limit (design §5.8).
        case limit
        /// Only the last check before a deletion gives these.
        case lastCheck
    }

    public var category: Category {
        switch self {
        case .podTerminated, .orphan, .idle, .willUnmount, .diskPressure: return .reap
        case .mounted, .lockHeld, .notEmpty, .pluginExcluded, .inconclusive: return .disk
        case .podRunning, .podPending, .podPhaseUnknown, .phaseExcluded, .ownerExcluded, .ownerDaemonSet, .ownerNode,
             .namespaceExcluded, .protected, .staticPod, .annotationInvalid, .annotationMissing:
            return .pod(timeBased: false)
        case .annotationRecent: return .pod(timeBased: true)
        case .podAlive, .livenessUnknown: return .node
        case .recentAccess: return .access(timeBased: true)
        case .changedDuringScan: return .access(timeBased: false)
        case .notObservedLongEnough: return .observation
        case .orphansDisabled, .manifestsEmpty, .manifestsIncomplete, .manifestsStale, .manifestsOlderThanPod,
             .manifestsTimeInvalid, .podSourceUnsynced, .podSourceCannotVouch, .podViewShrank, .orphanUnconfirmed:
            return .view
        case .limitMaxReaps, .limitOrphanFraction: return .limit
        case .accessedDuringReap, .podStateChanged: return .lastCheck
        }
    }

    /// Whether this reason, by itself, means keep.
    public var keeps: Bool { category != .reap }

    /// Kept only until time passes with nothing touching the volume
    /// (`reapableAt` can say when).
    public var isTimeBased: Bool {
        switch category {
        case .pod(timeBased: true), .access(timeBased: true), .observation: return true
        default: return false
        }
    }

    /// In disk pressure, a terminated pod's or a confirmed orphan's volume
    /// kept only for this may go after `pressure.idleAfter`.
    public var allowsPressureReap: Bool { self == .recentAccess }

    /// What a keep found at the last check before a deletion also says:
    /// activity became `accessed-during-reap`, a change on the pod's or the
    /// view's side `pod-state-changed`; nil for the rest (the disk, the node).
    public var atLastCheck: Reason? {
        switch category {
        case .access: return .accessedDuringReap
        case .pod, .view: return .podStateChanged
        case .reap, .disk, .node, .observation, .limit, .lastCheck: return nil
        }
    }

    /// One sentence for people.
    public var summary: String {
        switch self {
        case .podTerminated: return "the pod finished (Succeeded or Failed) and will not run again"
        case .orphan: return "no manifest lists the pod, and the manifests are complete and fresh"
        case .idle: return "no access for longer than idle.after"
        case .diskPressure: return "the disk is under pressure: a terminated pod's or orphan's volume idle for pressure.idleAfter goes, biggest first, until free space is back above the threshold"
        case .willUnmount: return "a mount inside is of a type in volumes.unmount and will be unmounted first"
        case .podRunning: return "the pod is Running"
        case .podPending: return "the pod is Pending"
        case .podPhaseUnknown: return "the pod's phase is unknown or missing (a static pod manifest has no status)"
        case .phaseExcluded: return "the pod's phase is not in pods.phases"
        case .ownerExcluded: return "the pod is owned by a kind in pods.excludeOwnerKinds"
        case .ownerDaemonSet: return "the pod belongs to a DaemonSet (pods.excludeOwnerKinds)"
        case .ownerNode: return "a mirror pod of a static pod, owned by the Node (pods.excludeOwnerKinds)"
        case .namespaceExcluded: return "the pod's namespace is in pods.excludeNamespaces"
        case .protected: return "the pod carries the protect annotation (pods.protectAnnotation)"
        case .staticPod: return "a static pod directory (config hash) that no manifest matches: never an orphan"
        case .podAlive: return "the pod's cgroup on this node holds processes: it runs, whatever the manifests say"
        case .recentAccess: return "accessed within idle.after"
        case .changedDuringScan: return "an entry vanished while the tree was walked: activity"
        case .annotationRecent: return "the last-accessed annotation is younger than annotation.idleAfter"
        case .annotationInvalid: return "the last-accessed annotation is not an RFC 3339 time"
        case .annotationMissing: return "annotation.required is on and the pod has no last-accessed annotation"
        case .notObservedLongEnough: return "idle.requireObservation: not watched without gaps for all of idle.after"
        case .mounted: return "the volume or something inside it is a mount point"
        case .lockHeld: return "a directory in the volume is flock-held (systemd-tmpfiles convention)"
        case .notEmpty: return "not a local kind: only an empty, unmounted directory is removed"
        case .pluginExcluded: return "the plugin is in volumes.exclude"
        case .inconclusive: return "part of the tree, or the pod's cgroup, could not be read (EIO, EACCES, ESTALE...)"
        case .orphansDisabled: return "orphans.reap is off"
        case .manifestsEmpty: return "no manifest file lists any pod: there is no snapshot to judge orphans by"
        case .manifestsIncomplete: return "a manifest file could not be read or parsed"
        case .manifestsStale: return "the manifests are older than orphans.manifestsMaxAge"
        case .manifestsOlderThanPod: return "the pod directory appeared after the manifests were refreshed"
        case .podSourceUnsynced: return "the pod source lost the server (a failed watch or poll) and has not listed again: it vouches for no orphan"
        case .podSourceCannotVouch: return "the pod source is a cache that can be partial (the kubelet's /pods lists only static pods after a restart without the API server): it never vouches that a pod is gone"
        case .podViewShrank: return "the pod view lost more pods at once than limits.maxPodsLost or limits.maxOrphanFraction allow, without DELETE events: every orphan is held until a later, different snapshot agrees"
        case .livenessUnknown: return "no kubelet pod cgroup tree was found on this node: whether the pod still runs cannot be checked, so an orphan is kept"
        case .manifestsTimeInvalid: return "the manifests' refresh time (mtime) is in the future: their age is unknown"
        case .orphanUnconfirmed: return "not yet missing from two different manifest writes orphans.confirmAfter apart"
        case .limitMaxReaps: return "limits.maxReapsPerCycle reached; the most idle go first"
        case .limitOrphanFraction: return "more than limits.maxOrphanFraction of pod directories would go as orphans: none do"
        case .accessedDuringReap: return "accessed after the plan was made: seen at the last check, or during the removal (which then stops: a partial reap)"
        case .podStateChanged: return "the pod's state changed after the plan was made"
        }
    }

    public static func < (lhs: Reason, rhs: Reason) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
