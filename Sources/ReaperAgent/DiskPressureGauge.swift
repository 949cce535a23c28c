import Foundation
import Logging
import NodeDiscovery
import ReaperCore
import Synchronization
import SystemCalls
import SystemdIntegration

/// Watches the filesystems that hold pod volumes for pressure mode: the
/// kubelet root's, and any other one a volume directory lives on (the `pods/`
/// directory or a pod directory on its own disk). Measures each with
/// `fstatvfs` through a descriptor opened beneath the kubelet root, resolves
/// the threshold (policy, else the kubelet's eviction thresholds plus the
/// margin, else 15%), and keeps each filesystem's hysteresis state and the
/// time spent in pressure between cycles.
public final class DiskPressureGauge: Sendable {
    struct State {
        /// In pressure, by filesystem (`FilesystemUsage.key`).
        var active: [String: Bool] = [:]
        var since: Date?
        var totalSeconds: Double = 0
        var last: DiskPressure?
        /// Where the other filesystems were measured (a volume path below the root).
        var elsewhereProbes: [String: String] = [:]
    }

    /// The kubelet config as last parsed, and the file it was parsed from.
    struct ParsedKubeletConfig {
        var file: FileIdentity
        var result: Result<KubeletEvictionThresholds?, KubeletConfigError>
        /// The file was last modified a second or more before it was read:
        /// a later write would show a later modification time. (Times tick
        /// coarsely: two same-size writes in one tick look the same.)
        var settled: Bool
    }

    let kubeletRoot: String
    let kubeletConfig: String
    let mountInfoPath: String
    private let state = Mutex(State())
    private let parsedKubeletConfig = Mutex<ParsedKubeletConfig?>(nil)
    /// The check between cycles measures here: openat, statx, fstatvfs and a
    /// kubelet config parse are blocking calls. (Within a cycle the gauge is
    /// already on the cycle's queue and measures there.)
    private let work = BlockingWork(label: "volume-reaper.pressure")

    public init(kubeletRoot: String, kubeletConfig: String, mountInfoPath: String = "/proc/self/mountinfo") {
        self.kubeletRoot = kubeletRoot
        self.kubeletConfig = kubeletConfig
        self.mountInfoPath = mountInfoPath
    }

    /// The threshold for `settings`: the policy's amounts when set, else the
    /// kubelet's plus `margin` points, else 15% (inodes: 5% + margin).
    public static func threshold(for settings: Policy.Pressure, kubelet: KubeletEvictionThresholds?, totalBytes: UInt64, totalInodes: UInt64) -> PressureThreshold {
        func withMargin(_ amount: SpaceAmount, total: UInt64) -> SpaceAmount {
            switch amount {
            case .percent(let value): return .percent(min(100, value + settings.margin))
            case .absolute(let value): return .absolute(value + SpaceAmount.percent(settings.margin).resolve(total: total))
            }
        }
        let bytes = settings.available ?? kubelet?.available.map { withMargin($0, total: totalBytes) } ?? .percent(15)
        let inodes = settings.inodesAvailable ?? withMargin(kubelet?.inodesFree ?? .percent(5), total: totalInodes)
        let source = settings.available != nil ? "policy" : kubelet?.available != nil ? "kubelet config + margin" : "default 15%"
        return PressureThreshold(available: bytes, inodesAvailable: inodes, hysteresis: settings.hysteresis, source: source)
    }

    /// Measures every filesystem that holds volumes in `inventory` and
    /// updates the state; nil without a pressure section. A filesystem that
    /// cannot be measured is no pressure: pressure only widens deletion, so
    /// what cannot be measured must not widen it.
    public func assess(policy: Policy, inventory: NodeInventory, now: Date, logger: Logger) -> DiskPressure? {
        guard let settings = policy.pressure else { return nil }
        let root: FilesystemUsage
        do {
            root = try measureRoot()
        } catch {
            logger.error("cannot measure the kubelet filesystem; no pressure mode this cycle", metadata: ["error": "\(error)"])
            return nil
        }
        let probes = Self.elsewhereProbes(inventory, rootDevice: root.device)
        var elsewhere: [FilesystemUsage] = []
        if !probes.isEmpty {
            let table = try? MountTable.read(path: mountInfoPath)
            for (device, volumePath) in probes.sorted(by: { $0.key < $1.key }) {
                do {
                    elsewhere.append(try measure(volumePath: volumePath, expecting: device, table: table))
                } catch {
                    logger.warning("cannot measure a volume filesystem; no pressure mode for its volumes this cycle", metadata: [
                        "device": "\(device)", "volume_path": "\(volumePath)", "error": "\(error)",
                    ])
                }
            }
        }
        let kubelet: KubeletEvictionThresholds?
        do {
            kubelet = settings.available == nil ? try kubeletThresholds() : nil
        } catch {
            logger.error("kubelet config unreadable; pressure threshold defaults to 15%", metadata: ["error": "\(error)"])
            kubelet = nil
        }
        return state.withLock { state in
            func judge(_ usage: FilesystemUsage) -> PressureAssessment {
                let threshold = Self.threshold(for: settings, kubelet: kubelet, totalBytes: usage.totalBytes, totalInodes: usage.totalInodes)
                let wasActive = state.active[usage.key] ?? false
                let assessment = PressureAssessment.assess(usage, threshold: threshold, wasActive: wasActive)
                if assessment.active != wasActive {
                    log(change: assessment, threshold: threshold, logger: logger)
                }
                state.active[usage.key] = assessment.active
                return assessment
            }
            let pressure = DiskPressure(kubeletRoot: judge(root), elsewhere: elsewhere.map(judge))
            let measured = Set(pressure.all.map(\.filesystem.key))
            state.active = state.active.filter { measured.contains($0.key) }
            if pressure.active, state.since == nil {
                state.since = now
            } else if !pressure.active, let since = state.since {
                state.totalSeconds += now.timeIntervalSince(since)
                state.since = nil
            }
            state.last = pressure
            state.elsewhereProbes = probes
            return pressure
        }
    }

    private func log(change assessment: PressureAssessment, threshold: PressureThreshold, logger: Logger) {
        let usage = assessment.filesystem
        var metadata: Logger.Metadata = [
            "filesystem": "\(usage.path)", "device": "\(usage.device ?? "-")", "free_bytes": "\(usage.availableBytes)",
            "threshold_bytes": "\(assessment.thresholdBytes)", "free_inodes": "\(usage.availableInodes)",
            "threshold_source": "\(threshold.source)",
        ]
        if assessment.active {
            logger.warning("disk pressure: entering pressure mode", metadata: metadata.merging(MessageID.diskPressureBegan.metadata) { $1 })
        } else {
            metadata["kubelet_root"] = "\(kubeletRoot)"
            logger.notice("disk pressure over: leaving pressure mode", metadata: metadata.merging(MessageID.diskPressureEnded.metadata) { $1 })
        }
    }

    /// One volume path per filesystem other than the kubelet root's that
    /// holds volume directories, by device. A volume that is itself a mount
    /// (a memory-backed emptyDir) is left out: its own filesystem is never
    /// reaped through, so its space is not ours to free.
    static func elsewhereProbes(_ inventory: NodeInventory, rootDevice: String?) -> [String: String] {
        guard let rootDevice else { return [:] }
        var probes: [String: String] = [:]
        for directory in inventory.pods {
            for volume in directory.volumes {
                guard let device = volume.scan.device, device != rootDevice, probes[device] == nil,
                      !volume.scan.mounts.contains(where: { $0.mountPoint == volume.path }) else { continue }
                probes[device] = volume.path
            }
        }
        return probes
    }

    /// The kubelet root's filesystem (the root itself may be a symlink the operator chose).
    func measureRoot() throws(SystemCallError) -> FilesystemUsage {
        let fd = try Syscall.openAt(nil, kubeletRoot, flags: OpenFlags.readOnly | OpenFlags.directory)
        defer { Syscall.close(fd) }
        let status = try Syscall.statx(fd, path: kubeletRoot)
        let space = try Syscall.fstatvfs(fd, path: kubeletRoot)
        return FilesystemUsage(
            path: kubeletRoot, totalBytes: space.totalBytes, availableBytes: space.availableBytes,
            totalInodes: space.totalInodes, availableInodes: space.availableInodes, device: status.deviceName
        )
    }

    /// The filesystem of a volume below the kubelet root, opened beneath it
    /// (no symlink, no `..`), which must still be on `device`. Named by the
    /// mount point mountinfo gives its mount, else by the volume path.
    func measure(volumePath: String, expecting device: String?, table: MountTable?) throws -> FilesystemUsage {
        guard volumePath.hasPrefix(kubeletRoot + "/") else { throw MeasurementError("\(volumePath): not below \(kubeletRoot)") }
        let root = try Syscall.openAt(nil, kubeletRoot, flags: OpenFlags.readOnly | OpenFlags.directory)
        defer { Syscall.close(root) }
        let fd = try Syscall.openBeneath(root, String(volumePath.dropFirst(kubeletRoot.count + 1)))
        defer { Syscall.close(fd) }
        let status = try Syscall.statx(fd, path: volumePath)
        if let device, status.deviceName != device {
            throw MeasurementError("\(volumePath): now on device \(status.deviceName), not \(device)")
        }
        let space = try Syscall.fstatvfs(fd, path: volumePath)
        let mountPoint = table.flatMap { table in table.mountIDs.firstIndex(of: status.mountID).map { table.mounts[$0].mountPoint } }
        return FilesystemUsage(
            path: mountPoint ?? volumePath, totalBytes: space.totalBytes, availableBytes: space.availableBytes,
            totalInodes: space.totalInodes, availableInodes: space.availableInodes, device: status.deviceName
        )
    }

    /// The kubelet's eviction thresholds (nil: no config file), parsed again
    /// only when the file changed: the check between cycles asks every
    /// `pressure.checkInterval`.
    func kubeletThresholds() throws(KubeletConfigError) -> KubeletEvictionThresholds? {
        // Opened, so a symlinked config is judged by what it points to.
        let identity = try? FileIdentity.of(kubeletConfig)
        if let identity, let parsed = parsedKubeletConfig.withLock({ $0 }), parsed.settled, parsed.file == identity {
            return try parsed.result.get()
        }
        let result: Result<KubeletEvictionThresholds?, KubeletConfigError>
        do {
            result = .success(try KubeletEvictionThresholds.load(path: kubeletConfig))
        } catch let problem as KubeletConfigError {
            result = .failure(problem)
        } catch {
            result = .failure(KubeletConfigError("\(kubeletConfig): \(error)"))
        }
        if let identity {
            let settled = Double(identity.modified.seconds) + 1 <= Date().timeIntervalSince1970
            parsedKubeletConfig.withLock { $0 = ParsedKubeletConfig(file: identity, result: result, settled: settled) }
        }
        return try result.get()
    }

    /// The free space of the filesystem `volumePath` is on, now, for the last
    /// check and the journal's before/after fields; nil when it cannot be measured.
    public func measureFree(volumePath: String) -> FilesystemUsage? {
        try? measure(volumePath: volumePath, expecting: nil, table: nil)
    }

    /// Between cycles: measures the filesystems the last cycle measured and
    /// says whether a cycle should run now: one has crossed into pressure, or
    /// one in pressure is still short of space after the last cycle reaped
    /// under pressure (its cap or a last check may have left more to do).
    /// A hint only: the cycle measures again before anything is judged.
    public func wantsCycle(lastPlanReapedUnderPressure: Bool, policy: Policy) async -> Bool {
        await work.run { self.measureWantsCycle(lastPlanReapedUnderPressure: lastPlanReapedUnderPressure, policy: policy) }
    }

    private func measureWantsCycle(lastPlanReapedUnderPressure: Bool, policy: Policy) -> Bool {
        guard let settings = policy.pressure else { return false }
        let (last, probes) = state.withLock { ($0.last, $0.elsewhereProbes) }
        guard let last else { return false }
        let kubelet = settings.available == nil ? (try? kubeletThresholds()) ?? nil : nil
        var current: [(FilesystemUsage, wasActive: Bool)] = []
        if let root = try? measureRoot() { current.append((root, last.kubeletRoot.active)) }
        for previous in last.elsewhere {
            guard let device = previous.filesystem.device, let probe = probes[device],
                  let usage = try? measure(volumePath: probe, expecting: device, table: nil) else { continue }
            current.append((usage, previous.active))
        }
        return current.contains { usage, wasActive in
            let threshold = Self.threshold(for: settings, kubelet: kubelet, totalBytes: usage.totalBytes, totalInodes: usage.totalInodes)
            let now = PressureAssessment.assess(usage, threshold: threshold, wasActive: wasActive)
            return (now.active && !wasActive) || (now.active && now.bytesNeeded + now.inodesNeeded > 0 && lastPlanReapedUnderPressure)
        }
    }

    /// The last assessment and the seconds spent in pressure so far.
    public func status(now: Date) -> (pressure: DiskPressure?, secondsInPressure: Double) {
        state.withLock { state in
            (state.last, state.totalSeconds + (state.since.map { now.timeIntervalSince($0) } ?? 0))
        }
    }
}

/// A filesystem that cannot be measured as asked: the path is not below the
/// kubelet root, or what it names moved to another device since the walk.
struct MeasurementError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension FilesystemUsage {
    /// Which filesystem: its device, or its path where the device is unknown.
    var key: String { device ?? path }
}
