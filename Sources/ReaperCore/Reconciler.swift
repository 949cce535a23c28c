import Foundation

/// Everything one reconcile pass judges. Plain values, so a pass is repeatable.
public struct ReconcileInput: Sendable {
    public var inventory: NodeInventory
    public var manifests: PodSnapshot
    /// Last access per volume path, from the watcher and the access store.
    public var access: [String: AccessRecord]
    public var policy: Policy
    public var now: Date
    /// Orphan sightings by pod UID from earlier passes (`orphans.confirmAfter`).
    public var orphanObservations: [String: OrphanObservation]
    /// `now` on the boot clock; nil: unknown, and no orphan is confirmed.
    public var boot: BootInstant?
    /// The pod cgroups' view: live pods are kept whatever the manifests say.
    public var liveness: PodLiveness
    /// The filesystems as measured for this pass (pressure mode only).
    public var pressure: DiskPressure?

    public init(
        inventory: NodeInventory, manifests: PodSnapshot, access: [String: AccessRecord], policy: Policy, now: Date,
        orphanObservations: [String: OrphanObservation] = [:], boot: BootInstant? = nil, liveness: PodLiveness = PodLiveness(),
        pressure: DiskPressure? = nil
    ) {
        self.boot = boot
        self.pressure = pressure
        self.inventory = inventory
        self.manifests = manifests
        self.access = access
        self.policy = policy
        self.now = now
        self.orphanObservations = orphanObservations
        self.liveness = liveness
    }
}

/// The idle rule of design §4 and the plan-time safety rules of §5, as a pure
/// function: `--plan`, `--once`, the daemon and the socket all share it.
public enum Reconciler {
    public static func plan(_ input: ReconcileInput) -> Plan {
        let loss = PodViewLoss(input)
        let snapshot = OrphanSnapshotJudgement(input, observations: input.orphanObservations, loss: loss)
        var verdicts: [VolumeVerdict] = []
        var orphanDirectories: [PodDirectory] = []

        for directory in input.inventory.pods {
            let pods = input.manifests.pods(matching: directory.uid, kind: directory.kind)
            let isOrphan = pods.isEmpty && directory.kind == .uid
            if isOrphan { orphanDirectories.append(directory) }
            for volume in directory.volumes {
                verdicts.append(judge(volume, in: directory, pods: pods, snapshot: snapshot, input: input))
            }
        }

        var alerts: [PlanAlert] = loss.alert.map { [$0] } ?? []
        var orphanPodDirectories = orphanDirectories
            .filter { input.policy.orphans.removePodDir && snapshot.keepReasons(for: $0).isEmpty }
            .filter { input.liveness.keepReasons(for: $0.uid, orphan: true).isEmpty }
            .map(\.path)
        var measured = input.policy.pressure == nil ? nil : input.pressure
        let pressure = measured.flatMap { $0.active ? input.policy.pressure : nil }
        if let pressure, var assessed = measured {
            applyPressure(&verdicts, pressure: &assessed, devices: volumeDevices(input.inventory), settings: pressure)
            measured = assessed
        }
        applyOrphanFraction(&verdicts, orphanPodDirectories: &orphanPodDirectories, alerts: &alerts, input: input, snapshot: snapshot)
        applyMaxReaps(&verdicts, limit: max(input.policy.limits.maxReapsPerCycle, pressure?.maxReapsPerCycle ?? 0))

        // A pod directory goes only once every volume in it goes.
        let keptPrefixes = Set(verdicts.filter { $0.verdict == .keep && $0.orphan }.map { podDirectory(of: $0.path) })
        orphanPodDirectories.removeAll { keptPrefixes.contains($0) }

        let manifests = ManifestSummary(
            source: input.manifests.source, path: input.manifests.path, refreshedAt: input.manifests.refreshedAt,
            complete: input.manifests.isComplete, synced: input.manifests.synced, resourceVersion: input.manifests.resourceVersion,
            errors: input.manifests.errors.map(\.description), files: input.manifests.files.count, pods: input.manifests.pods.count
        )
        var plan = Plan(
            generatedAt: input.now, kubeletRoot: input.inventory.kubeletRoot, manifests: manifests, alerts: alerts,
            volumes: verdicts.sorted { $0.path < $1.path }, orphanPodDirectories: orphanPodDirectories.sorted()
        )
        if let measured {
            plan.pressure = measured.kubeletRoot
            plan.pressureElsewhere = measured.elsewhere.isEmpty ? nil : measured.elsewhere
        }
        return plan
    }

    /// Judges one volume again on fresh data, right before it is deleted
    /// (design §5.6). Limits are not re-applied: they only ever remove reaps.
    public static func rejudge(
        _ volume: PodVolume, in directory: PodDirectory, manifests: PodSnapshot,
        access: [String: AccessRecord], policy: Policy, now: Date
    ) -> VolumeVerdict {
        let input = ReconcileInput(
            inventory: NodeInventory(kubeletRoot: "", pods: [directory]), manifests: manifests,
            access: access, policy: policy, now: now
        )
        let pods = manifests.pods(matching: directory.uid, kind: directory.kind)
        let snapshot = OrphanSnapshotJudgement(manifests: manifests, policy: policy, now: now, boot: nil, observations: nil)
        return judge(volume, in: directory, pods: pods, snapshot: snapshot, input: input)
    }

    /// Why an orphan pod directory must stay (empty: its snapshot vouches for
    /// it being an orphan). Non-empty also when a manifest now lists it.
    /// Confirmation (`orphans.confirmAfter`) is the plan's: only directories
    /// the plan confirmed reach this last check.
    public static func orphanKeepReasons(_ directory: PodDirectory, manifests: PodSnapshot, policy: Policy, now: Date) -> [Reason] {
        if directory.kind != .uid { return [.staticPod] }
        if manifests.describesAnyPod(matching: directory.uid, kind: directory.kind) { return [.podStateChanged] }
        return OrphanSnapshotJudgement(manifests: manifests, policy: policy, now: now, boot: nil, observations: nil).keepReasons(for: directory)
    }

    /// `<root>/pods/<uid>` of a volume path `<root>/pods/<uid>/volumes/<plugin>/<name>`.
    public static func podDirectory(of volumePath: String) -> String {
        var components = volumePath.split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(3)
        return components.joined(separator: "/")
    }

    // MARK: One volume

    static func judge(
        _ volume: PodVolume, in directory: PodDirectory, pods: [Pod], snapshot: OrphanSnapshotJudgement, input: ReconcileInput
    ) -> VolumeVerdict {
        let policy = input.policy
        let scan = volume.scan
        let isOrphan = pods.isEmpty && directory.kind == .uid
        var keep: [Reason] = []
        var reap: [Reason] = []

        // The disk.
        if !scan.unreadable.isEmpty { keep.append(.inconclusive) }
        if policy.volumes.exclude.contains(volume.plugin) { keep.append(.pluginExcluded) }
        let recursive = volume.plugin.isLocal && policy.volumes.recursive.contains(volume.plugin)
        if scan.isMounted {
            let unmountable = recursive && scan.mounts.allSatisfy { policy.volumes.unmount.contains($0.filesystemType) }
            if unmountable { reap.append(.willUnmount) } else { keep.append(.mounted) }
        }
        if scan.isLockHeld { keep.append(.lockHeld) }
        if !recursive, !scan.holdsOnlyBookkeeping { keep.append(.notEmpty) }

        // The node: a pod whose cgroup holds processes runs, whatever the manifests say.
        let isOrphanCandidate = pods.isEmpty && directory.kind == .uid
        keep.append(contentsOf: input.liveness.keepReasons(for: directory.uid, orphan: isOrphanCandidate))

        // The pod.
        let terminated = !pods.isEmpty && pods.allSatisfy { $0.isTerminated }
        if !pods.isEmpty {
            let podReasons = pods.flatMap { podKeepReasons($0, policy: policy, now: input.now) }
            if podReasons.isEmpty { reap.append(.podTerminated) } else { keep.append(contentsOf: podReasons) }
        } else if directory.kind == .configHash {
            keep.append(.staticPod)
        } else {
            let snapshotReasons = snapshot.keepReasons(for: directory)
            if snapshotReasons.isEmpty { reap.append(.orphan) } else { keep.append(contentsOf: snapshotReasons) }
        }

        // Access.
        let access = lastAccess(of: volume, record: input.access[volume.path], pods: terminated ? pods : [], policy: policy, now: input.now)
        let idleSeconds = access.map { max(0, Int(input.now.timeIntervalSince($0.date).rounded(.down))) } ?? 0
        if scan.vanishedDuringScan { keep.append(.changedDuringScan) }
        if let access {
            if input.now.timeIntervalSince(access.date) < policy.idle.after { keep.append(.recentAccess) } else { reap.append(.idle) }
        } else {
            keep.append(.inconclusive)
        }
        if policy.idle.requireObservation {
            let since = input.access[volume.path]?.observedSince
            if since.map({ input.now.timeIntervalSince($0) < policy.idle.after }) ?? true { keep.append(.notObservedLongEnough) }
        }

        let representative = pods.first
        let keepReasons = Array(Set(keep)).sorted()
        var verdict = VolumeVerdict(
            path: volume.path, podUID: directory.uid, namespace: representative?.namespace, pod: representative?.name,
            podPhase: representative?.phase, orphan: isOrphan, plugin: volume.plugin, name: volume.name,
            verdict: keepReasons.isEmpty ? .reap : .keep,
            reasons: keepReasons.isEmpty ? reap.sorted() : keepReasons,
            lastAccess: access?.date, lastAccessSource: access?.source, idleSeconds: idleSeconds,
            bytes: scan.bytes, files: scan.files, mounted: scan.isMounted, mounts: scan.mounts
        )
        verdict.reapableAt = reapableAt(
            keepReasons: keepReasons, lastAccess: access?.date, pods: pods, observedSince: input.access[volume.path]?.observedSince, policy: policy
        )
        return verdict
    }

    /// Why one manifest document keeps its pod's volumes (empty: it does not).
    static func podKeepReasons(_ pod: Pod, policy: Policy, now: Date) -> [Reason] {
        var reasons: [Reason] = []
        if let value = pod.annotations[policy.pods.protectAnnotation], value != "false" { reasons.append(.protected) }
        if policy.pods.excludeNamespaces.contains(pod.namespace) { reasons.append(.namespaceExcluded) }
        for owner in pod.owners where policy.pods.excludeOwnerKinds.contains(owner.kind) {
            switch owner.kind {
            case "DaemonSet": reasons.append(.ownerDaemonSet)
            case "Node": reasons.append(.ownerNode)
            default: reasons.append(.ownerExcluded)
            }
        }
        switch pod.phase.flatMap(PodPhase.init(rawValue:)) {
        case .running?: reasons.append(.podRunning)
        case .pending?: reasons.append(.podPending)
        case .unknown?, nil: reasons.append(.podPhaseUnknown)
        case let phase?:
            if !policy.pods.phases.contains(phase) { reasons.append(.phaseExcluded) }
        }
        if let text = pod.annotations[policy.annotation.key] {
            if let stamp = RFC3339.parse(text) {
                if now.timeIntervalSince(stamp) < policy.annotation.idleAfter { reasons.append(.annotationRecent) }
            } else {
                reasons.append(.annotationInvalid)
            }
        } else if policy.annotation.required {
            reasons.append(.annotationMissing)
        }
        return reasons
    }

    struct Access {
        var date: Date
        var source: LastAccessSource
    }

    /// The newest of every access signal (design §4.1). Ties go to the earlier
    /// candidate, so an observed event outranks a timestamp of the same moment.
    static func lastAccess(of volume: PodVolume, record: AccessRecord?, pods: [Pod], policy: Policy, now: Date) -> Access? {
        var candidates: [Access] = []
        if let record { candidates.append(Access(date: record.lastAccess, source: record.source)) }
        for kind in policy.idle.timestamps {
            switch kind {
            case .mtime: if let date = volume.scan.newestModification { candidates.append(Access(date: date, source: .mtime)) }
            case .ctime: if let date = volume.scan.newestChange { candidates.append(Access(date: date, source: .ctime)) }
            case .atime: if let date = volume.scan.newestAccess { candidates.append(Access(date: date, source: .atime)) }
            }
        }
        // A vanished entry changed its parent directory just now.
        if volume.scan.vanishedDuringScan { candidates.append(Access(date: now, source: .mtime)) }
        if let finished = pods.compactMap(\.lastContainerFinishedAt).max() {
            candidates.append(Access(date: finished, source: .finished))
        }
        return candidates.reduce(nil) { best, candidate in
            guard let best else { return candidate }
            return candidate.date > best.date ? candidate : best
        }
    }

    // MARK: Limits (design §5.8)

    /// The breaker counts what the view lost, not only what would go: every
    /// UID directory the view does not list while it vouches for absence,
    /// whatever else keeps it (`pod-alive`, `mounted`, unconfirmed).
    static func applyOrphanFraction(
        _ verdicts: inout [VolumeVerdict], orphanPodDirectories: inout [String], alerts: inout [PlanAlert], input: ReconcileInput,
        snapshot judgement: OrphanSnapshotJudgement
    ) {
        let total = input.inventory.pods.count
        guard total > 0, input.policy.orphans.reap else { return }
        let missing = input.inventory.pods.filter { directory in
            directory.kind == .uid && !input.manifests.describesAnyPod(matching: directory.uid, kind: directory.kind)
                && judgement.snapshotKeepReasons(for: directory).allSatisfy { $0 == .orphansDisabled || $0 == .podViewShrank }
        }
        let fraction = Double(missing.count) / Double(total)
        guard fraction > input.policy.limits.maxOrphanFraction else { return }
        for index in verdicts.indices where verdicts[index].orphan && verdicts[index].verdict == .reap {
            verdicts[index].keep(because: .limitOrphanFraction)
        }
        orphanPodDirectories = []
        let percent = Int((fraction * 100).rounded())
        alerts.append(PlanAlert(
            code: .limitOrphanFraction,
            message: "\(missing.count) of \(total) pod directories (\(percent)%) are missing from the pod view, more than limits.maxOrphanFraction \(input.policy.limits.maxOrphanFraction): no orphan is reaped; check the pod source"
        ))
    }

    static func applyMaxReaps(_ verdicts: inout [VolumeVerdict], limit: Int) {
        let reapIndices = verdicts.indices
            .filter { verdicts[$0].verdict == .reap }
            .sorted { reapOrder(verdicts[$0], verdicts[$1]) }
        for index in reapIndices.dropFirst(max(0, limit)) {
            verdicts[index].keep(because: .limitMaxReaps)
        }
    }
}
