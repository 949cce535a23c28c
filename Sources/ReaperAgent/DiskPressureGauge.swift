import BoundedYAML
import Foundation
import Synchronization
import Logging
import ReaperCore
import SystemCalls
import Yams

/// The kubelet's eviction thresholds for the node filesystem, from its config
/// file (`evictionHard` / `evictionSoft`: `nodefs.available`, `nodefs.inodesFree`).
public struct KubeletEvictionThresholds: Sendable, Hashable {
    public var available: SpaceAmount?
    public var inodesFree: SpaceAmount?

    public init(available: SpaceAmount? = nil, inodesFree: SpaceAmount? = nil) {
        self.available = available
        self.inodesFree = inodesFree
    }

    /// nil when the file is missing; throws a one-line error naming the file
    /// and field when it is unreadable or a value is not an amount.
    public static func load(path: String) throws -> KubeletEvictionThresholds? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 4 << 20 else {
            throw ConfigurationProblem("\(path): cannot read the kubelet config (or larger than 4 MiB)")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> KubeletEvictionThresholds {
        let documents: [Node]
        do {
            documents = try BoundedYAML.documents(text, limits: .settings)
        } catch {
            throw ConfigurationProblem("\(file): \(error)")
        }
        var thresholds = KubeletEvictionThresholds()
        // Soft thresholds are reached first when both are set: the larger amount wins.
        for section in ["evictionHard", "evictionSoft"] {
            guard let mapping = documents.first?.mapping?[section]?.mapping else { continue }
            for (key, field) in [("nodefs.available", \KubeletEvictionThresholds.available), ("nodefs.inodesFree", \.inodesFree)] {
                guard let text = mapping[key]?.string else { continue }
                guard let amount = SpaceAmount.parse(text) else {
                    throw ConfigurationProblem("\(file): \(section).\(key): not a percentage or a quantity (got \"\(UserText.excerpt(text, quoting: true))\")")
                }
                thresholds[keyPath: field] = larger(thresholds[keyPath: field], amount)
            }
        }
        return thresholds
    }

    /// Of two amounts, the one that asks for more free space; percentages
    /// beat sizes when they cannot be compared without the filesystem.
    static func larger(_ lhs: SpaceAmount?, _ rhs: SpaceAmount) -> SpaceAmount {
        switch (lhs, rhs) {
        case (nil, _): return rhs
        case (.percent(let a)?, .percent(let b)): return .percent(max(a, b))
        case (.absolute(let a)?, .absolute(let b)): return .absolute(max(a, b))
        case (.percent?, .absolute): return lhs!
        case (.absolute?, .percent): return rhs
        }
    }
}

/// A one-line configuration error.
public struct ConfigurationProblem: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Watches the kubelet root's filesystem for pressure mode: measures it with
/// statvfs, resolves the threshold (policy, else the kubelet's eviction
/// thresholds plus the margin, else 15%), and keeps the hysteresis state and
/// the time spent in pressure between cycles.
public final class DiskPressureGauge: Sendable {
    struct State {
        var active = false
        var since: Date?
        var totalSeconds: Double = 0
        var last: PressureAssessment?
    }

    let kubeletRoot: String
    let kubeletConfig: String
    private let state = Mutex(State())

    public init(kubeletRoot: String, kubeletConfig: String) {
        self.kubeletRoot = kubeletRoot
        self.kubeletConfig = kubeletConfig
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

    /// Measures now and updates the state; nil without a pressure section.
    /// A failed measurement is no pressure: pressure only widens deletion,
    /// so what cannot be measured must not widen it.
    public func assess(policy: Policy, now: Date, logger: Logger) -> PressureAssessment? {
        guard let settings = policy.pressure else { return nil }
        let measured: (totalBytes: UInt64, availableBytes: UInt64, totalInodes: UInt64, availableInodes: UInt64)
        let kubelet: KubeletEvictionThresholds?
        do {
            measured = try Syscall.statvfs(kubeletRoot)
        } catch {
            logger.error("cannot measure the kubelet filesystem; no pressure mode this cycle", metadata: ["error": "\(error)"])
            return nil
        }
        do {
            kubelet = settings.available == nil ? try KubeletEvictionThresholds.load(path: kubeletConfig) : nil
        } catch {
            logger.error("kubelet config unreadable; pressure threshold defaults to 15%", metadata: ["error": "\(error)"])
            kubelet = nil
        }
        let usage = FilesystemUsage(
            path: kubeletRoot, totalBytes: measured.totalBytes, availableBytes: measured.availableBytes,
            totalInodes: measured.totalInodes, availableInodes: measured.availableInodes
        )
        let threshold = Self.threshold(for: settings, kubelet: kubelet, totalBytes: usage.totalBytes, totalInodes: usage.totalInodes)
        return state.withLock { state in
            let assessment = PressureAssessment.assess(usage, threshold: threshold, wasActive: state.active)
            if assessment.active, !state.active {
                state.since = now
                logger.warning("disk pressure: entering pressure mode", metadata: [
                    "kubelet_root": "\(kubeletRoot)", "free_bytes": "\(usage.availableBytes)", "threshold_bytes": "\(assessment.thresholdBytes)",
                    "free_inodes": "\(usage.availableInodes)", "threshold_source": "\(threshold.source)",
                ])
            } else if !assessment.active, state.active, let since = state.since {
                state.totalSeconds += now.timeIntervalSince(since)
                state.since = nil
                logger.notice("disk pressure over: leaving pressure mode", metadata: [
                    "kubelet_root": "\(kubeletRoot)", "free_bytes": "\(usage.availableBytes)", "threshold_bytes": "\(assessment.thresholdBytes)",
                ])
            }
            state.active = assessment.active
            state.last = assessment
            return assessment
        }
    }

    /// Free bytes and inodes now, for the journal's before/after fields.
    public func measureFree() -> (bytes: UInt64, inodes: UInt64)? {
        guard let measured = try? Syscall.statvfs(kubeletRoot) else { return nil }
        return (measured.availableBytes, measured.availableInodes)
    }

    /// The last assessment and the seconds spent in pressure so far.
    public func status(now: Date) -> (assessment: PressureAssessment?, secondsInPressure: Double) {
        state.withLock { state in
            (state.last, state.totalSeconds + (state.since.map { now.timeIntervalSince($0) } ?? 0))
        }
    }
}
