import Foundation

/// A moment on the node's boot clock (`CLOCK_BOOTTIME`: monotonic, counts
/// suspend, never stepped by NTP), with the boot it belongs to. Intervals
/// that guard a deletion are measured on it, so a wall-clock step cannot
/// shorten them, and a reboot starts them again.
public struct BootInstant: Sendable, Hashable {
    /// `/proc/sys/kernel/random/boot_id`.
    public var bootID: String
    /// Seconds since that boot.
    public var seconds: TimeInterval

    public init(bootID: String, seconds: TimeInterval) {
        self.bootID = bootID
        self.seconds = seconds
    }

    /// Seconds from `earlier` to this instant; nil across a reboot.
    public func secondsSince(_ earlier: BootInstant) -> TimeInterval? {
        bootID == earlier.bootID ? seconds - earlier.seconds : nil
    }
}

/// A pod directory seen missing from a trusted snapshot, and not listed by
/// any snapshot since (design §4.4). Kept in the state directory so that
/// one-shot runs confirm across runs.
public struct OrphanObservation: Sendable, Hashable {
    public var podUID: String
    /// When the agent first saw the directory missing (wall clock: shown to
    /// people, never compared).
    public var firstMissingAt: Date
    /// The same moment on the boot clock, which confirmation measures on;
    /// nil for a sighting stored before it was kept (confirms nothing).
    public var firstMissingBoot: BootInstant?
    /// The `PodSnapshot.fingerprint` of that snapshot.
    public var snapshotFingerprint: String

    public init(podUID: String, firstMissingAt: Date, firstMissingBoot: BootInstant?, snapshotFingerprint: String) {
        self.podUID = podUID
        self.firstMissingAt = firstMissingAt
        self.firstMissingBoot = firstMissingBoot
        self.snapshotFingerprint = snapshotFingerprint
    }
}

/// What one pass learned about orphans, to be stored after the plan.
public struct OrphanObservationUpdate: Sendable, Hashable {
    /// First sightings. A UID already stored keeps its earlier sighting.
    public var missing: [OrphanObservation]
    /// UIDs a snapshot lists again, or whose directory is gone: forgotten.
    public var forget: [String]

    public init(missing: [OrphanObservation] = [], forget: [String] = []) {
        self.missing = missing
        self.forget = forget
    }

    public var isEmpty: Bool { missing.isEmpty && forget.isEmpty }
}

public enum OrphanConfirmation {
    /// The observations `input` adds: every UID directory its snapshot can
    /// vouch for as missing becomes a sighting; every directory it lists, and
    /// every stored UID with no directory left, is forgotten. Pure, so the
    /// agent records this after the plan and the reconciler stays a function.
    public static func update(after input: ReconcileInput) -> OrphanObservationUpdate {
        let judgement = OrphanSnapshotJudgement(input, observations: nil)
        var update = OrphanObservationUpdate()
        var present = Set<String>()
        for directory in input.inventory.pods where directory.kind == .uid {
            present.insert(directory.uid)
            if input.manifests.describesAnyPod(matching: directory.uid, kind: directory.kind) {
                if input.orphanObservations[directory.uid] != nil { update.forget.append(directory.uid) }
                continue
            }
            // orphans.reap off does not make the snapshot less true.
            let distrust = judgement.snapshotKeepReasons(for: directory).filter { $0 != .orphansDisabled }
            guard distrust.isEmpty, let fingerprint = input.manifests.fingerprint, let boot = input.boot else { continue }
            if let stored = input.orphanObservations[directory.uid] {
                // A sighting from another boot (or from before the boot clock
                // was kept) measures nothing: confirmation starts again.
                guard stored.firstMissingBoot.flatMap(boot.secondsSince) == nil else { continue }
                update.forget.append(directory.uid)
            }
            update.missing.append(OrphanObservation(
                podUID: directory.uid, firstMissingAt: input.now, firstMissingBoot: boot, snapshotFingerprint: fingerprint
            ))
        }
        update.forget += input.orphanObservations.keys.filter { !present.contains($0) }
        update.forget.sort()
        return update
    }
}

/// Whether the manifests can vouch that a pod directory is an orphan (design §4.4).
struct OrphanSnapshotJudgement {
    var manifests: PodSnapshot
    var policy: Policy
    var now: Date
    /// Now on the boot clock, which confirmation measures on; nil: unknown,
    /// and no orphan is confirmed.
    var boot: BootInstant?
    /// Stored sightings, for `orphans.confirmAfter`. Nil at the last check
    /// before a deletion: the plan confirmed the orphan, and a fresh snapshot
    /// there can only add reasons to keep.
    var observations: [String: OrphanObservation]?
    /// The view lost more pods at once than the limits allow (`pod-view-shrank`).
    var viewShrank: Bool = false

    init(manifests: PodSnapshot, policy: Policy, now: Date, boot: BootInstant?, observations: [String: OrphanObservation]?, viewShrank: Bool = false) {
        self.manifests = manifests
        self.policy = policy
        self.now = now
        self.boot = boot
        self.observations = observations
        self.viewShrank = viewShrank
    }

    /// `loss`: the input's `PodViewLoss` when the caller already has it.
    init(_ input: ReconcileInput, observations: [String: OrphanObservation]?, loss: PodViewLoss? = nil) {
        self.init(
            manifests: input.manifests, policy: input.policy, now: input.now, boot: input.boot, observations: observations,
            viewShrank: (loss ?? PodViewLoss(input)).exceedsLimits
        )
    }

    /// How far in the future a refresh time may lie (clock granularity, a
    /// writer's clock a little ahead) before it counts as unknown.
    static let futureSlack: TimeInterval = 5

    func keepReasons(for directory: PodDirectory) -> [Reason] {
        var reasons = snapshotKeepReasons(for: directory)
        if reasons.isEmpty, let observations, policy.orphans.confirmAfter > 0,
           !isConfirmed(observations[directory.uid]) {
            reasons.append(.orphanUnconfirmed)
        }
        return reasons
    }

    /// Whether the snapshot itself can be trusted about this directory.
    func snapshotKeepReasons(for directory: PodDirectory) -> [Reason] {
        var reasons: [Reason] = []
        if !policy.orphans.reap { reasons.append(.orphansDisabled) }
        if manifests.isEmpty {
            reasons.append(.manifestsEmpty)
            return reasons
        }
        // An unsynced network source carries its failure as an error; one
        // reason says both.
        if !manifests.vouchesForAbsence { reasons.append(.podSourceCannotVouch) }
        if viewShrank { reasons.append(.podViewShrank) }
        if !manifests.synced {
            reasons.append(.podSourceUnsynced)
        } else if !manifests.errors.isEmpty || manifests.files.isEmpty {
            reasons.append(.manifestsIncomplete)
        }
        guard let refreshed = manifests.refreshedAt else {
            reasons.append(.manifestsEmpty)
            return reasons
        }
        // `touch -d '+1 day'` would otherwise keep a snapshot fresh, and
        // newer than every pod directory, for a day.
        if refreshed.timeIntervalSince(now) > Self.futureSlack {
            reasons.append(.manifestsTimeInvalid)
            return reasons
        }
        if now.timeIntervalSince(refreshed) > policy.orphans.manifestsMaxAge { reasons.append(.manifestsStale) }
        if !(refreshed > directory.appearedAt) { reasons.append(.manifestsOlderThanPod) }
        return reasons
    }

    /// Missing from an earlier snapshot at least `confirmAfter` ago on the
    /// boot clock (a wall-clock step cannot shorten it; a reboot restarts
    /// it), and that snapshot was another content than this one: a single
    /// bad write (cut short, half written), or one answer polled again and
    /// again, can never make an orphan.
    func isConfirmed(_ observation: OrphanObservation?) -> Bool {
        guard let observation, let fingerprint = manifests.fingerprint, observation.snapshotFingerprint != fingerprint,
              let boot, let first = observation.firstMissingBoot, let elapsed = boot.secondsSince(first) else { return false }
        return elapsed >= policy.orphans.confirmAfter
    }
}
