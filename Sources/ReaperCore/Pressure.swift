import Foundation

/// An amount of free space (or free inodes): a percentage of the filesystem
/// or an absolute size (`15%`, `10Gi`, `500M`, `100000`).
public enum SpaceAmount: Sendable, Hashable {
    case percent(Double)
    case absolute(UInt64)

    /// The amount on a filesystem of `total` units.
    public func resolve(total: UInt64) -> UInt64 {
        switch self {
        case .percent(let value): return UInt64((Double(total) * value / 100).rounded(.up))
        case .absolute(let value): return value
        }
    }

    /// Parses `15%`, `2.5%`, `10Gi`, `500Mi`, `1G`, `100k`, `4096`; nil when
    /// the text is none of these, or a percentage outside 0...100.
    public static func parse(_ text: String) -> SpaceAmount? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix("%") {
            guard let value = Double(trimmed.dropLast()), value.isFinite, (0...100).contains(value),
                  trimmed.dropLast().allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) else { return nil }
            return .percent(value)
        }
        let suffixes: [(String, Double)] = [
            ("Ki", 1024), ("Mi", 1_048_576), ("Gi", 1_073_741_824), ("Ti", 1_099_511_627_776), ("Pi", 1_125_899_906_842_624),
            ("k", 1e3), ("K", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15),
        ]
        var number = Substring(trimmed)
        var scale = 1.0
        for (suffix, factor) in suffixes where trimmed.hasSuffix(suffix) {
            number = trimmed.dropLast(suffix.count)
            scale = factor
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number), value.isFinite, value * scale < 9e18 else { return nil }
        return .absolute(UInt64((value * scale).rounded(.up)))
    }

    public var description: String {
        switch self {
        case .percent(let value): return value == value.rounded() ? "\(Int(value))%" : "\(value)%"
        case .absolute(let value): return "\(value)"
        }
    }
}

/// One filesystem's space as `statvfs` measured it (bytes for unprivileged users).
public struct FilesystemUsage: Sendable, Hashable, Codable {
    /// The directory measured (the kubelet root, or a mount under a pod directory).
    public var path: String
    public var totalBytes: UInt64
    public var availableBytes: UInt64
    public var totalInodes: UInt64
    public var availableInodes: UInt64
    /// The filesystem as `major:minor`: which volumes it holds (see `VolumeScan.device`).
    public var device: String?

    public init(path: String, totalBytes: UInt64, availableBytes: UInt64, totalInodes: UInt64, availableInodes: UInt64, device: String? = nil) {
        self.path = path
        self.device = device
        self.totalBytes = totalBytes
        self.availableBytes = availableBytes
        self.totalInodes = totalInodes
        self.availableInodes = availableInodes
    }

    public var availablePercent: Double { totalBytes == 0 ? 100 : Double(availableBytes) * 100 / Double(totalBytes) }
}

/// The filesystems one cycle judges pressure on: the kubelet root's, and each
/// other filesystem that holds volume directories (an emptyDir that lives
/// elsewhere: `pods/` or a pod directory on its own disk). Each is judged on
/// its own: a volume's deletion is counted only against its own filesystem.
public struct DiskPressure: Sendable, Hashable {
    public var kubeletRoot: PressureAssessment
    public var elsewhere: [PressureAssessment]

    public init(kubeletRoot: PressureAssessment, elsewhere: [PressureAssessment] = []) {
        self.kubeletRoot = kubeletRoot
        self.elsewhere = elsewhere
    }

    public var all: [PressureAssessment] { [kubeletRoot] + elsewhere }
    public var active: Bool { all.contains(where: \.active) }

    /// The assessment of the filesystem a volume on `device` lives on: the
    /// other filesystem of that device, else the kubelet root's when the
    /// volume is on it (or either device is unknown). nil: on a filesystem
    /// that was not measured, which pressure never touches.
    public func assessment(forVolumeOn device: String?) -> PressureAssessment? {
        if let device, let other = elsewhere.first(where: { $0.filesystem.device == device }) { return other }
        guard let device, let rootDevice = kubeletRoot.filesystem.device else { return kubeletRoot }
        return device == rootDevice ? kubeletRoot : nil
    }
}

/// When pressure begins and ends, in free space and free inodes.
public struct PressureThreshold: Sendable, Hashable {
    public var available: SpaceAmount
    /// nil: inodes are not watched.
    public var inodesAvailable: SpaceAmount?
    /// Pressure ends once free space is this much above the threshold.
    public var hysteresis: SpaceAmount
    /// Where the threshold came from, for people (`policy`, `kubelet config + 5 points`, `default`).
    public var source: String

    public init(available: SpaceAmount, inodesAvailable: SpaceAmount?, hysteresis: SpaceAmount, source: String) {
        self.available = available
        self.inodesAvailable = inodesAvailable
        self.hysteresis = hysteresis
        self.source = source
    }
}

/// The pressure state one cycle judges by: measured outside, passed in, so
/// the reconciler stays pure.
public struct PressureAssessment: Sendable, Hashable, Codable {
    public var active: Bool
    public var filesystem: FilesystemUsage
    /// Free bytes and inodes below which pressure begins.
    public var thresholdBytes: UInt64
    public var thresholdInodes: UInt64?
    /// What must be freed to be back at the threshold (0: nothing).
    public var bytesNeeded: UInt64
    public var inodesNeeded: UInt64
    /// Volumes on this filesystem the plan reaps because of pressure (before
    /// the per-cycle cap). In pressure, short of space and 0: nothing to reap.
    public var pressureReaps: Int = 0

    /// In pressure, short of space, and no volume on it qualifies: the operator must act.
    public var nothingToReap: Bool { active && bytesNeeded + inodesNeeded > 0 && pressureReaps == 0 }

    public init(active: Bool, filesystem: FilesystemUsage, thresholdBytes: UInt64, thresholdInodes: UInt64?, bytesNeeded: UInt64, inodesNeeded: UInt64) {
        self.active = active
        self.filesystem = filesystem
        self.thresholdBytes = thresholdBytes
        self.thresholdInodes = thresholdInodes
        self.bytesNeeded = bytesNeeded
        self.inodesNeeded = inodesNeeded
    }

    /// Enters pressure below the threshold, leaves it at threshold plus
    /// hysteresis (either of bytes and inodes keeps it on).
    public static func assess(_ usage: FilesystemUsage, threshold: PressureThreshold, wasActive: Bool) -> PressureAssessment {
        let bytes = threshold.available.resolve(total: usage.totalBytes)
        let inodes = threshold.inodesAvailable.map { $0.resolve(total: usage.totalInodes) }
        let hysteresisBytes = threshold.hysteresis.resolve(total: usage.totalBytes)
        let hysteresisInodes = threshold.hysteresis.resolve(total: usage.totalInodes)
        // A filesystem without inode accounting (some report 0) is never short of inodes.
        let watchInodes = inodes != nil && usage.totalInodes > 0
        let below = usage.availableBytes < bytes || (watchInodes && usage.availableInodes < inodes!)
        let recovered = usage.availableBytes >= bytes &+ hysteresisBytes
            && (!watchInodes || usage.availableInodes >= inodes! &+ hysteresisInodes)
        let active = below || (wasActive && !recovered)
        return PressureAssessment(
            active: active, filesystem: usage, thresholdBytes: bytes, thresholdInodes: inodes,
            bytesNeeded: active && bytes > usage.availableBytes ? bytes - usage.availableBytes : 0,
            inodesNeeded: active && watchInodes && inodes! > usage.availableInodes ? inodes! - usage.availableInodes : 0
        )
    }
}
