import Foundation

/// What one pod's cgroups say, read right before a deletion (design §4.4).
public enum CgroupLiveness: Sendable, Hashable {
    /// A cgroup of the pod holds processes.
    case alive(cgroup: String)
    /// No cgroup of the pod, or only empty ones.
    case notAlive
    /// A cgroup file could not be read.
    case inconclusive(String)
    /// No kubelet cgroup tree could be found (why): nothing says whether
    /// the pod runs, so an orphan is kept (`liveness-unknown`).
    case noKubeletTree(String)

    /// Why the node keeps the pod's volumes, with the detail people read;
    /// nil when it does not. `orphan`: the pod view does not list the pod,
    /// so only the node could say it runs. A pod the view lists as
    /// terminated goes on the view's word without a tree: its phase is final.
    public func keep(orphan: Bool) -> (reason: Reason, detail: String)? {
        switch self {
        case .alive(let cgroup): return (.podAlive, "the pod's cgroup \(cgroup) holds processes")
        case .inconclusive(let problem): return (.inconclusive, "the pod's cgroup is unreadable: \(problem)")
        case .noKubeletTree(let why) where orphan: return (.livenessUnknown, why)
        case .notAlive, .noKubeletTree: return nil
        }
    }
}

/// Everything the last check before one deletion judges by. The reaper
/// fills it in as the decision asks (`LastCheckDecision.read`), so a volume
/// kept early costs no walk and no cgroup read.
public struct LastCheckInput: Sendable {
    /// The plan's verdict: a reap.
    public var planned: VolumeVerdict
    /// The access store as of now; nil: unreadable (keeps everything).
    public var access: [String: AccessRecord]?
    /// For a disk-pressure reap, the volume's filesystem measured now; nil
    /// for any other reap, or when the daemon measures no filesystem.
    public var freeSpace: FreeSpaceReading?
    /// The filesystems the plan found in pressure.
    public var pressureFilesystems: [PressureAssessment]
    public var policy: Policy
    /// The volume walked again (and its pod directory), with the pod view as of now.
    public var rescan: Rescan?
    public var liveness: CgroupLiveness?
    /// Whether this process shares PID 1's mount namespace (asked only
    /// before an unmount).
    public var inHostMountNamespace: Bool?
    /// The mounts inside were unmounted, and `rescan` is the walk after.
    public var unmounted = false
    public var now: Date

    public enum FreeSpaceReading: Sendable, Hashable {
        case measured(FilesystemUsage)
        case unmeasurable
    }

    public struct Rescan: Sendable {
        public var volume: PodVolume
        public var directory: PodDirectory
        public var podView: PodSnapshot

        public init(volume: PodVolume, directory: PodDirectory, podView: PodSnapshot) {
            self.volume = volume
            self.directory = directory
            self.podView = podView
        }
    }

    public init(
        planned: VolumeVerdict, access: [String: AccessRecord]?, freeSpace: FreeSpaceReading?,
        pressureFilesystems: [PressureAssessment], policy: Policy, now: Date
    ) {
        self.planned = planned
        self.access = access
        self.freeSpace = freeSpace
        self.pressureFilesystems = pressureFilesystems
        self.policy = policy
        self.now = now
    }
}

/// The answer of the last check, or what it needs read before it can answer.
public enum LastCheckDecision: Sendable, Equatable {
    /// Keep the volume, for these reasons (as the outcome reports them).
    case keep([Reason], detail: String)
    /// Every check so far passed: read this into the input and ask again.
    case read(Reading)
    /// Delete it, first unmounting these mounts (deepest first; empty: none).
    case reap(unmountFirst: [MountInfo])

    public enum Reading: Sendable, Equatable {
        case rescan, liveness, mountNamespace
    }
}

extension Reconciler {
    /// The last check before one deletion (design §5): the one place that
    /// says which reasons can change between the plan and the deletion. The
    /// reaper does the reading and the ordering; everything judged is here.
    ///
    /// In order: access times must be readable; a disk-pressure reap needs
    /// its filesystem still short of space, measured as the plan measured
    /// it; the volume, walked again, must still be a reap under fresh pod
    /// view and access times (judged by `pressure.idleAfter` for a pressure
    /// reap); the pod's cgroups must not say it runs; mounts inside may be
    /// unmounted only from the host's mount namespace, and after that,
    /// nothing may be mounted and the verdict must stand.
    public static func lastCheck(_ input: LastCheckInput) -> LastCheckDecision {
        guard let access = input.access else {
            return .keep([.inconclusive], detail: "access times unreadable at the last check")
        }
        let pressureReap = input.planned.reasons.contains(.diskPressure)
        if pressureReap, let reading = input.freeSpace {
            // Its own filesystem, as the plan judged it (by device); one the
            // plan did not measure is not in pressure.
            guard case .measured(let measured) = reading,
                  let pressure = input.pressureFilesystems.first(where: { $0.filesystem.device == measured.device }) else {
                return .keep([.inconclusive], detail: "the volume's filesystem cannot be measured as the plan measured it")
            }
            if measured.availableBytes >= pressure.thresholdBytes, measured.availableInodes >= pressure.thresholdInodes ?? 0 {
                return .keep([.recentAccess], detail: "free space on \(pressure.filesystem.path) is back above the pressure threshold")
            }
        }
        guard let rescan = input.rescan else { return .read(.rescan) }
        var judging = input.policy
        if pressureReap, let pressure = input.policy.pressure {
            judging.idle.after = min(input.policy.idle.after, pressure.idleAfter)
        }
        let fresh = rejudge(rescan.volume, in: rescan.directory, manifests: rescan.podView, access: access, policy: judging, now: input.now)
        if input.unmounted {
            if fresh.verdict == .keep || rescan.volume.scan.isMounted {
                return .keep(atLastCheck(fresh.reasons.isEmpty ? [.mounted] : fresh.reasons), detail: "kept after unmounting")
            }
            return .reap(unmountFirst: [])
        }
        if fresh.verdict == .keep {
            return .keep(atLastCheck(fresh.reasons), detail: "kept at the last check before deletion")
        }
        guard let liveness = input.liveness else { return .read(.liveness) }
        if let alive = liveness.keep(orphan: input.planned.orphan || fresh.orphan) {
            return .keep([alive.reason], detail: alive.detail)
        }
        guard rescan.volume.scan.isMounted else { return .reap(unmountFirst: []) }
        // Only reached when every mount is of an opted-in type on a local kind.
        // An unmount in a private mount namespace (a sandboxed unit) would leave
        // the host's mount in place over what is then deleted: refuse.
        guard let host = input.inHostMountNamespace else { return .read(.mountNamespace) }
        guard host else { return .keep([.mounted], detail: "not in the host mount namespace: volumes.unmount refused") }
        return .reap(unmountFirst: rescan.volume.scan.mounts.sorted { $0.mountPoint.count > $1.mountPoint.count })
    }

    /// A keep found at the last check also says what changed: activity is
    /// `accessed-during-reap`, a change on the pod's or the view's side
    /// `pod-state-changed` (`Reason.atLastCheck`); the rest stay as they are.
    public static func atLastCheck(_ reasons: [Reason]) -> [Reason] {
        Array(Set(reasons + reasons.compactMap(\.atLastCheck))).sorted()
    }
}
