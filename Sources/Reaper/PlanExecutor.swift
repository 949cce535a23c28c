import Foundation
import Logging
import NodeDiscovery
import ReaperCore
import SystemCalls
import SystemPackage

/// What happened to one volume of the plan.
public struct ReapOutcome: Sendable {
    public enum Action: String, Sendable {
        /// Deleted.
        case reaped
        /// A dry run: would have been deleted.
        case wouldReap = "would-reap"
        /// Kept at the last check right before deletion.
        case keptAtLastCheck = "kept-at-last-check"
        /// The plan's limits kept it (design §5.8).
        case refusedByLimits = "refused-by-limits"
        /// Deletion started or was tried and failed; what remains is kept.
        case failed
        /// Deletion stopped part way (activity, a mount that landed, an
        /// error): `stats` says what had already gone; what remains is kept.
        case partiallyReaped = "partially-reaped"
    }

    public var verdict: VolumeVerdict
    public var action: Action
    /// Why it was kept or failed.
    public var reasons: [Reason]
    public var detail: String?
    public var stats: RemovalStats
    /// Mount points unmounted first (`volumes.unmount`).
    public var unmounted: [String]
    /// Disk-pressure reaps: free bytes of the volume's filesystem right before and after.
    public var freeBytesBefore: UInt64?
    public var freeBytesAfter: UInt64?
    /// The filesystem a disk-pressure reap freed space on (its mount point).
    public var filesystem: String?

    public init(verdict: VolumeVerdict, action: Action, reasons: [Reason], detail: String?, stats: RemovalStats, unmounted: [String]) {
        self.verdict = verdict
        self.action = action
        self.reasons = reasons
        self.detail = detail
        self.stats = stats
        self.unmounted = unmounted
    }
}

extension ReapOutcome.Action {
    /// What a volume whose opening or removal stopped on `error` became:
    /// anything already gone makes it a partial reap, never "kept", which
    /// would say the volume is whole; a tree that could not be read or a path
    /// outside `<root>/pods` is a failure; the rest (a mount, a lock, activity)
    /// were kept at the last check.
    init(stoppedBy error: RemovalError) {
        if error.removed.filesRemoved > 0 {
            self = .partiallyReaped
        } else {
            switch error.code {
            case .inconclusive, .outsideKubeletPods: self = .failed
            case .mounted, .lockHeld, .changedDuringRemoval, .notEmpty: self = .keptAtLastCheck
            }
        }
    }
}

/// What happened to an orphan's pod directory after its volumes.
public struct PodDirectoryOutcome: Sendable {
    public var path: String
    public var removed: Bool
    public var detail: String?
    public var stats: RemovalStats
    /// Why it was kept (or stopped), when it was not removed.
    public var reasons: [Reason] = []

    /// Removal started and stopped part way: `stats` says what had gone.
    public var isPartial: Bool { !removed && stats.filesRemoved > 0 }

    public init(path: String, removed: Bool, detail: String?, stats: RemovalStats, reasons: [Reason] = []) {
        self.path = path
        self.removed = removed
        self.detail = detail
        self.stats = stats
        self.reasons = reasons
    }
}

/// The result of acting on one plan.
public struct ReapReport: Sendable {
    public var outcomes: [ReapOutcome]
    public var podDirectories: [PodDirectoryOutcome]
    public var dryRun: Bool

    public init(outcomes: [ReapOutcome], podDirectories: [PodDirectoryOutcome], dryRun: Bool) {
        self.outcomes = outcomes
        self.podDirectories = podDirectories
        self.dryRun = dryRun
    }

    public var reaped: [ReapOutcome] { outcomes.filter { $0.action == .reaped } }
    /// The volumes the last check kept, with its reasons: the daemon walks
    /// them again next cycle and serves them as kept.
    public var keptAtLastCheck: [String: [Reason]] {
        Dictionary(outcomes.filter { $0.action == .keptAtLastCheck }.map { ($0.verdict.path, $0.reasons) }, uniquingKeysWith: { first, _ in first })
    }
    /// Freed by whole and partial reaps alike.
    public var bytesFreed: UInt64 {
        outcomes.filter { $0.action == .reaped || $0.action == .partiallyReaped }.reduce(0) { $0 + $1.stats.bytesFreed }
    }
}

/// Turns a plan into deletions an SRE can trust (design §5): each volume is
/// re-scanned and re-judged right before it goes, mounts of opted-in types are
/// plainly unmounted first, local kinds are emptied with `SafeRemover`, every
/// other plugin only loses an empty directory, and nothing outside
/// `<root>/pods/<uid>/` is touched.
public struct PlanExecutor: Sendable {
    public var kubeletRoot: String
    public var policy: Policy
    public var mountInfoPath: String
    public var remover = SafeRemover()
    /// Called between the last check and the first unmount, with the volume
    /// path: tests use it to race the unmount deterministically.
    public var beforeUnmount: (@Sendable (String) -> Void)?
    /// Defence in depth: the node's cgroups, asked per pod right before deletion.
    public var podCgroups = PodCgroups()
    /// The filesystem a volume (given by path) lives on, measured now
    /// (pressure mode): around each disk-pressure reap, which stops once that
    /// filesystem is back at the plan's threshold for it. nil from it: not
    /// measurable, so the pressure reap is kept (fail closed).
    public var measureFree: (@Sendable (String) -> FilesystemUsage?)?

    public init(kubeletRoot: String, policy: Policy, mountInfoPath: String = "/proc/self/mountinfo") {
        self.kubeletRoot = kubeletRoot.count > 1 && kubeletRoot.hasSuffix("/") ? String(kubeletRoot.dropLast()) : kubeletRoot
        self.policy = policy
        self.mountInfoPath = mountInfoPath
    }

    /// Acts on `plan`; `dryRun` deletes nothing. `currentPodView` gives the
    /// pod view as of now and is asked at each last check (each volume, each
    /// orphan pod directory): a pod listed again mid-cycle keeps its volumes.
    public func execute(
        plan: Plan, currentPodView: () -> PodSnapshot, access: @Sendable () -> [String: AccessRecord]?,
        dryRun: Bool, logger: Logger, clock: () -> Date = Date.init
    ) -> ReapReport {
        var outcomes: [ReapOutcome] = []
        let reaps = plan.volumes.filter { $0.verdict == .reap }.sorted(by: Reconciler.reapOrder)
        for verdict in plan.volumes where verdict.verdict == .keep
            && verdict.reasons.contains(where: { $0 == .limitMaxReaps || $0 == .limitOrphanFraction }) {
            outcomes.append(ReapOutcome(verdict: verdict, action: .refusedByLimits, reasons: verdict.reasons, detail: nil, stats: RemovalStats(), unmounted: []))
        }
        var reapedPaths = Set<String>()
        for verdict in reaps {
            if dryRun {
                outcomes.append(ReapOutcome(verdict: verdict, action: .wouldReap, reasons: verdict.reasons, detail: nil, stats: RemovalStats(), unmounted: []))
                continue
            }
            let outcome = reapOne(verdict, plan: plan, currentPodView: currentPodView, access: access, logger: logger, clock: clock)
            if outcome.action == .reaped { reapedPaths.insert(verdict.path) }
            outcomes.append(outcome)
        }
        var podDirectories: [PodDirectoryOutcome] = []
        if !dryRun {
            for directory in plan.orphanPodDirectories {
                // By prefix, not `Reconciler.podDirectory(of:)`: that traps on a
                // path of fewer than three components (a hand-edited plan), and
                // any verdict below the directory must have been reaped.
                let volumes = plan.volumes.filter { $0.path.hasPrefix(directory + "/") }
                guard volumes.allSatisfy({ reapedPaths.contains($0.path) }) else { continue }
                podDirectories.append(removeOrphanPodDirectory(directory, manifests: currentPodView(), logger: logger, now: clock()))
            }
        }
        return ReapReport(outcomes: outcomes, podDirectories: podDirectories, dryRun: dryRun)
    }

    // MARK: One volume

    /// One volume: the reads the last check asks for, in its order, then
    /// the unmounts and the removal. `Reconciler.lastCheck` judges.
    func reapOne(
        _ verdict: VolumeVerdict, plan: Plan, currentPodView: () -> PodSnapshot,
        access: @Sendable () -> [String: AccessRecord]?, logger: Logger, clock: () -> Date
    ) -> ReapOutcome {
        func kept(_ reasons: [Reason], _ detail: String?, action: ReapOutcome.Action = .keptAtLastCheck, unmounted: [String] = []) -> ReapOutcome {
            var updated = verdict
            updated.keep(because: reasons[0])
            updated.reasons = reasons
            return ReapOutcome(verdict: updated, action: action, reasons: reasons, detail: detail, stats: RemovalStats(), unmounted: unmounted)
        }
        var freeSpace: LastCheckInput.FreeSpaceReading?
        if verdict.reasons.contains(.diskPressure), let measureFree {
            freeSpace = measureFree(verdict.path).map { .measured($0) } ?? .unmeasurable
        }
        var input = LastCheckInput(
            planned: verdict, access: access(), freeSpace: freeSpace, pressureFilesystems: plan.pressureFilesystems, policy: policy, now: clock()
        )
        guard let location = KubeletPath(volumePath: verdict.path, kubeletRoot: kubeletRoot) else {
            return kept([.inconclusive], "not a volume path under \(kubeletRoot)/pods: refused", action: .failed)
        }
        // A pressure reap past its pressure check reports the free space
        // of its filesystem before and after, whatever became of it.
        var pastPressureCheck = false
        func finish(_ outcome: ReapOutcome) -> ReapOutcome {
            guard pastPressureCheck, case .measured(let measured)? = freeSpace,
                  let judged = plan.pressureFilesystems.first(where: { $0.filesystem.device == measured.device }) else { return outcome }
            var outcome = outcome
            outcome.freeBytesBefore = measured.availableBytes
            outcome.freeBytesAfter = measureFree?(verdict.path)?.availableBytes
            outcome.filesystem = judged.filesystem.path
            return outcome
        }
        var opened: KubeletPath.OpenVolume?
        defer { opened?.close() }
        // Anything changed after the first walk of the last check began is
        // in use, and stops the removal.
        var quietSince: KernelTime?
        var table: MountTable?
        var unmounted: [String] = []
        while true {
            switch Reconciler.lastCheck(input) {
            case .keep(let reasons, let detail):
                return finish(kept(reasons, detail, unmounted: unmounted))
            case .read(.rescan):
                pastPressureCheck = true
                if opened == nil {
                    do {
                        opened = try location.open()
                    } catch {
                        return finish(kept([error.reason], error.description, action: ReapOutcome.Action(stoppedBy: error)))
                    }
                }
                if quietSince == nil { quietSince = KernelTime.earliestStampFromNow() }
                let rescan = rescanned(location, opened!, verdict: verdict)
                table = rescan.table
                input.rescan = LastCheckInput.Rescan(volume: rescan.volume, directory: rescan.directory, podView: currentPodView())
                input.now = clock()
            case .read(.liveness):
                input.liveness = podCgroups.liveness(ofPod: location.podUID, logger: logger)
            case .read(.mountNamespace):
                input.inHostMountNamespace = Self.inHostMountNamespace()
            case .reap(let mounts) where !mounts.isEmpty:
                beforeUnmount?(verdict.path)
                for mount in mounts {
                    do throws(RemovalError) {
                        try unmountChecked(mount, table: table, location: location, opened: opened!)
                        unmounted.append(mount.mountPoint)
                        logger.info("unmounted before removal", metadata: ["volume_path": "\(verdict.path)", "mount_point": "\(mount.mountPoint)", "fstype": "\(mount.filesystemType)"])
                    } catch {
                        return finish(kept([.mounted], "umount \(mount.mountPoint): \(error.detail)", unmounted: unmounted))
                    }
                }
                input.unmounted = true
                input.rescan = nil
            case .reap:
                return finish(remove(verdict, location: location, opened: opened!, scannedBytes: input.rescan!.volume.scan.bytes,
                              quietSince: quietSince, unmounted: unmounted, logger: logger))
            }
        }
    }

    /// The removal itself, once the last check said reap.
    private func remove(
        _ verdict: VolumeVerdict, location: KubeletPath, opened: KubeletPath.OpenVolume, scannedBytes: UInt64,
        quietSince: KernelTime?, unmounted: [String], logger: Logger
    ) -> ReapOutcome {
        var stats = RemovalStats()
        do {
            let recursive = location.plugin.isLocal && policy.volumes.recursive.contains(location.plugin)
            if recursive {
                stats = try remover.removeTree(named: location.volumeName, in: opened.plugin, path: verdict.path, quietSince: quietSince)
            } else if location.plugin.isCSI {
                stats = try removeCSIVolume(location, opened)
            } else {
                try remover.removeEmptyDirectory(named: location.volumeName, in: opened.plugin, path: verdict.path)
                stats.filesRemoved = 1
            }
        } catch {
            var updated = verdict
            updated.keep(because: error.reason)
            logger.debug("removal stopped", metadata: ["volume_path": "\(verdict.path)", "error": "\(error)", "files_removed": "\(error.removed.filesRemoved)"])
            return ReapOutcome(verdict: updated, action: ReapOutcome.Action(stoppedBy: error), reasons: [error.reason], detail: error.description, stats: error.removed, unmounted: unmounted)
        }
        // The tree's size as the last check scanned it, right before removal.
        stats.bytesFreed = max(stats.bytesFreed, scannedBytes)
        var done = verdict
        done.bytes = stats.bytesFreed
        return ReapOutcome(verdict: done, action: .reaped, reasons: verdict.reasons, detail: nil, stats: stats, unmounted: unmounted)
    }

    /// The liveness cross-check for one pod, read now (`CgroupLiveness.keep`).
    func livenessKeep(podUID: String, orphan: Bool, logger: Logger) -> (reason: Reason, detail: String)? {
        podCgroups.liveness(ofPod: podUID, logger: logger).keep(orphan: orphan)
    }

    /// Whether this process shares PID 1's mount namespace. Unknown is no.
    public static func inHostMountNamespace() -> Bool {
        guard let mine = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt"),
              let host = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/1/ns/mnt") else { return false }
        return mine == host
    }

    private func rescanned(_ location: KubeletPath, _ opened: KubeletPath.OpenVolume, verdict: VolumeVerdict) -> (volume: PodVolume, directory: PodDirectory, table: MountTable?) {
        // An unreadable mount table is inconclusive, and counts the volume as mounted.
        let table = try? MountTable.read(path: mountInfoPath)
        let mounts = table ?? MountTable(mounts: [MountInfo(mountPoint: verdict.path, filesystemType: "unknown")])
        var scan = VolumeScanner(mountTable: mounts).scan(volumeNamed: location.volumeName, in: opened.plugin, path: verdict.path, plugin: location.plugin)
        if table == nil { scan.unreadable.append("\(mountInfoPath): unreadable") }
        let volume = PodVolume(path: verdict.path, plugin: location.plugin, name: location.volumeName, scan: scan)
        let directory = PodDirectory(
            uid: location.podUID, path: location.podDirectory, kind: location.podKind, appearedAt: opened.podAppearedAt, volumes: [volume]
        )
        return (volume, directory, table)
    }

    /// CSI: `mount/` (empty, unmounted) first, then `vol_data.json` (the
    /// kubelet needs it to unmount, so it goes only after), then the directory.
    private func removeCSIVolume(_ location: KubeletPath, _ opened: KubeletPath.OpenVolume) throws(RemovalError) -> RemovalStats {
        var stats = RemovalStats()
        let volumePath = location.volumePath
        let volume: FileDescriptor
        do {
            volume = try Syscall.openDirectory(opened.plugin, location.volumeName)
        } catch {
            throw RemovalError.from(error, path: volumePath)
        }
        defer { Syscall.close(volume) }
        let entries: [DirectoryEntry]
        do {
            entries = try Syscall.readDirectory(volume, path: volumePath)
        } catch {
            throw RemovalError.from(error, path: volumePath)
        }
        if entries.contains(where: { $0.name == "mount" }) {
            try remover.removeEmptyDirectory(named: "mount", in: volume, path: volumePath + "/mount")
            stats.filesRemoved += 1
        }
        if entries.contains(where: { $0.name == "vol_data.json" }) {
            stats.bytesFreed += try remover.removeFile(named: "vol_data.json", in: volume, path: volumePath + "/vol_data.json")
            stats.filesRemoved += 1
        }
        try remover.removeEmptyDirectory(named: location.volumeName, in: opened.plugin, path: volumePath)
        stats.filesRemoved += 1
        return stats
    }
}
