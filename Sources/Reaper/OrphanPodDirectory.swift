import Foundation
import Logging
import NodeDiscovery
import ReaperCore
import SystemCalls
import SystemPackage

extension PlanExecutor {
    /// Removes the rest of an orphan's pod directory once its volumes are gone:
    /// `containers/`, `plugins/`, `etc-hosts`, empty `volume-subpaths/`. Kept
    /// if anything is mounted, a volume remains, `volumeDevices/` exists, or
    /// the rest is not idle by the same rule as a volume: its newest
    /// timestamp of the kinds in `idle.timestamps` older than `idle.after`,
    /// no entry vanishing while it is walked, no held lock, nothing unreadable.
    /// A change after this check began stops the removal part way.
    func removeOrphanPodDirectory(_ path: String, manifests: PodSnapshot, logger: Logger, now: Date) -> PodDirectoryOutcome {
        func keep(_ detail: String, _ reasons: [Reason]) -> PodDirectoryOutcome {
            PodDirectoryOutcome(path: path, removed: false, detail: detail, stats: RemovalStats(), reasons: reasons)
        }
        guard let location = KubeletPath(podDirectory: path, kubeletRoot: kubeletRoot) else {
            return keep("not a pod directory under \(kubeletRoot)/pods: refused", [.inconclusive])
        }
        guard let table = try? MountTable.read(path: mountInfoPath) else {
            return keep("\(mountInfoPath) unreadable", [.inconclusive])
        }
        if let mount = table.mounts(atOrUnder: path).first { return keep("mount point inside: \(mount.mountPoint)", [.mounted]) }
        let pods: FileDescriptor
        do {
            pods = try location.openPodsDirectory()
        } catch {
            return keep(error.description, [error.reason])
        }
        defer { Syscall.close(pods) }
        // Our own removal of its volumes just changed `volumes/<plugin>/`:
        // wait out a tick of the file clock so that does not count as use.
        Syscall.sleep(milliseconds: 20)
        let quietSince = KernelTime.earliestStampFromNow()
        do {
            let podStatus = try Syscall.statx(pods, location.podUID)
            let born = podStatus.born ?? podStatus.changed
            let directory = PodDirectory(
                uid: location.podUID, path: path, kind: location.podKind,
                appearedAt: Date(timeIntervalSince1970: born.secondsSince1970), volumes: []
            )
            let reasons = Reconciler.orphanKeepReasons(directory, manifests: manifests, policy: policy, now: now)
            if !reasons.isEmpty { return keep("kept at the last check: \(reasons.map(\.rawValue).joined(separator: ","))", reasons) }
            if let alive = livenessKeep(podUID: location.podUID, orphan: true, logger: logger) {
                return keep("kept at the last check: \(alive.reason.rawValue): \(alive.detail)", [alive.reason])
            }
            let pod = try Syscall.openDirectory(pods, location.podUID)
            defer { Syscall.close(pod) }
            for entry in try Syscall.readDirectory(pod) {
                if entry.name == "volumeDevices" as String {
                    return keep("volumeDevices/ present: block volumes are the kubelet's", [.notEmpty])
                }
                if entry.name == "volumes" as String || entry.name == "volume-subpaths" as String {
                    if let problem = try onlyEmptyDirectories(entry.name, in: pod, path: path + "/" + entry.name.description) {
                        return keep(problem, [.notEmpty])
                    }
                }
            }
        } catch {
            return keep("\(error)", [.inconclusive])
        }
        // The idle rule, on all but `volumes/` (emptied by us) and `volume-subpaths/` (checked empty above).
        let scan = VolumeScanner(mountTable: table).scan(
            volumeNamed: location.podUID, in: pods, path: path, plugin: PluginName(""),
            skippingRootEntries: ["volumes", "volume-subpaths"]
        )
        let idleReasons = restOfPodKeepReasons(scan, now: now)
        if !idleReasons.isEmpty {
            let detail = scan.unreadable.first ?? scan.lockedPaths.first ?? scan.mounts.first?.mountPoint
            return keep("the rest of the pod directory is not idle" + (detail.map { ": \($0)" } ?? ""), idleReasons)
        }
        do {
            let stats = try remover.removeTree(named: location.podUID, in: pods, path: path, quietSince: quietSince)
            return PodDirectoryOutcome(path: path, removed: true, detail: nil, stats: stats)
        } catch {
            logger.debug("pod directory removal stopped", metadata: ["path": "\(path)", "error": "\(error)", "files_removed": "\(error.removed.filesRemoved)"])
            return PodDirectoryOutcome(path: path, removed: false, detail: error.description, stats: error.removed, reasons: [error.reason])
        }
    }

    /// The idle rule of a volume, applied to what a pod directory holds
    /// besides its volumes. No watcher follows those entries, so their
    /// timestamps are the signal: the kinds in `idle.timestamps`, mtime when
    /// that list is empty.
    func restOfPodKeepReasons(_ scan: VolumeScan, now: Date) -> [Reason] {
        var reasons: [Reason] = []
        if !scan.unreadable.isEmpty { reasons.append(.inconclusive) }
        if scan.isMounted { reasons.append(.mounted) }
        if scan.isLockHeld { reasons.append(.lockHeld) }
        if scan.vanishedDuringScan { reasons.append(.changedDuringScan) }
        let kinds = policy.idle.timestamps.isEmpty ? [.mtime] : policy.idle.timestamps
        let newest = kinds.compactMap { kind -> Date? in
            switch kind {
            case .mtime: return scan.newestModification
            case .ctime: return scan.newestChange
            case .atime: return scan.newestAccess
            }
        }.max()
        if let newest {
            if now.timeIntervalSince(newest) < policy.idle.after { reasons.append(.recentAccess) }
        } else {
            reasons.append(.inconclusive)
        }
        return Array(Set(reasons)).sorted()
    }

    /// nil when the tree `name` holds only directories (no volume data left, no
    /// subpath bind targets); else what was found.
    private func onlyEmptyDirectories(_ name: FileName, in parent: FileDescriptor, path: String) throws(SystemCallError) -> String? {
        var pending: [(FileDescriptor, String)] = [(try Syscall.openDirectory(parent, name), path)]
        defer { for (fd, _) in pending { Syscall.close(fd) } }
        while let (fd, directoryPath) = pending.popLast() {
            defer { Syscall.close(fd) }
            for entry in try Syscall.readDirectory(fd) {
                let status = try Syscall.statx(fd, entry.name)
                guard status.isDirectory, status.isMountRoot != true else {
                    return "\(directoryPath)/\(entry.name) remains"
                }
                pending.append((try Syscall.openDirectory(fd, entry.name), directoryPath + "/" + entry.name.description))
            }
        }
        return nil
    }
}
