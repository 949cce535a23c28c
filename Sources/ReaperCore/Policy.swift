import Foundation

/// Which decides, by design §4, when a volume is idle and may go. Loaded from
/// YAML by the PolicyFile module; this is the validated, typed form.
public struct Policy: Sendable, Hashable {
    public struct Idle: Sendable, Hashable {
        /// No access for this long: idle.
        public var after: TimeInterval = 30 * 60
        /// Tree timestamps that count as access when no event was seen.
        public var timestamps: [TimestampKind] = [.mtime]
        /// Reap only what a daemon watched for all of `after`.
        public var requireObservation = false
        /// A watch gap longer than this restarts the idle clock (with `requireObservation`).
        public var maxUnobservedGap: TimeInterval = 2 * 60
        public init() {}
    }

    public struct Annotation: Sendable, Hashable {
        public var key = "volume.alpha.kubernetes.io/last-accessed-at"
        public var idleAfter: TimeInterval = 45 * 60
        public var required = false
        public init() {}
    }

    public struct Pods: Sendable, Hashable {
        public var phases: [PodPhase] = [.succeeded, .failed]
        public var excludeOwnerKinds: [String] = ["DaemonSet", "Node"]
        public var excludeNamespaces: [String] = ["kube-system"]
        public var protectAnnotation = "volume-reaper.io/keep"
        public init() {}
    }

    public struct Orphans: Sendable, Hashable {
        public var reap = true
        public var manifestsMaxAge: TimeInterval = 10 * 60
        /// A pod directory is an orphan only once missing from two different
        /// snapshots (writes) at least this far apart; 0 trusts one snapshot.
        public var confirmAfter: TimeInterval = 2 * 60
        /// After an orphan's volumes are gone, remove the rest of its pod directory.
        public var removePodDir = true
        public init() {}
    }

    public struct Volumes: Sendable, Hashable {
        public var recursive: [PluginName] = [.emptyDir, .configMap, .secret, .projected, .downwardAPI]
        public var exclude: [PluginName] = []
        /// File system types that may be unmounted (plainly) before removal; local kinds only.
        public var unmount: [String] = []
        public init() {}
    }

    public struct Limits: Sendable, Hashable {
        public var maxReapsPerCycle = 100
        public var maxOrphanFraction = 0.5
        /// At most this many pods (with directories on disk) may drop out of
        /// the pod view in one step without DELETE events; more holds every
        /// orphan until a later snapshot agrees (`pod-view-shrank`).
        public var maxPodsLost = 20
        public init() {}
    }

    /// Disk pressure mode (issue 11): on when the policy has a `pressure` section.
    public struct Pressure: Sendable, Hashable {
        /// Free space below which pressure begins; nil: the kubelet's
        /// eviction threshold plus `margin` (15% without a kubelet config).
        public var available: SpaceAmount?
        /// Free inodes likewise; nil: the kubelet's `nodefs.inodesFree` plus `margin`.
        public var inodesAvailable: SpaceAmount?
        /// Percentage points added to the kubelet's thresholds, so that we act first.
        public var margin: Double = 5
        /// Pressure ends at the threshold plus this.
        public var hysteresis: SpaceAmount = .percent(5)
        /// `idle.after` for terminated pods' and orphans' volumes while in pressure.
        public var idleAfter: TimeInterval = 5 * 60
        /// The per-cycle cap in pressure (never below `limits.maxReapsPerCycle`).
        public var maxReapsPerCycle = 200
        /// How often the daemon measures free space between cycles, so that a
        /// crossing starts a cycle at once instead of at the next interval.
        public var checkInterval: TimeInterval = 10
        public init() {}
    }

    public var idle = Idle()
    public var annotation = Annotation()
    public var pods = Pods()
    public var orphans = Orphans()
    public var volumes = Volumes()
    public var limits = Limits()
    /// nil: no pressure mode.
    public var pressure: Pressure?

    public init() {}

    /// Every pod annotation the reconciler reads under this policy: a change
    /// of any other annotation cannot change a plan (`Pod.differsForReconcile`).
    /// A new read of an annotation in `Reconciler` must be added here.
    public var annotationKeysRead: Set<String> {
        [annotation.key, pods.protectAnnotation, Pod.configMirrorAnnotation, Pod.configHashAnnotation]
    }

    /// The built-in defaults, identical to `policies/default.yaml`.
    public static let defaults = Policy()
}

/// A tree timestamp kind usable as a sign of access.
public enum TimestampKind: String, Sendable, Hashable, CaseIterable, Codable {
    case mtime, ctime, atime
}

/// Kubernetes pod phases.
public enum PodPhase: String, Sendable, Hashable, CaseIterable, Codable {
    case pending = "Pending"
    case running = "Running"
    case succeeded = "Succeeded"
    case failed = "Failed"
    case unknown = "Unknown"
}
