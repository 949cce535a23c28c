import Foundation
import ReaperCore

/// Pressure mode as of the last cycle, in `GET /healthz` and the metrics.
public struct PressureStatus: Codable, Sendable, Hashable {
    /// Any measured filesystem is in pressure.
    public var active: Bool
    /// One in pressure is short of space, and no volume on it qualifies: the operator must act.
    public var nothingToReap: Bool
    /// The kubelet root's filesystem and its threshold.
    public var filesystem: FilesystemUsage
    public var thresholdBytes: UInt64
    public var thresholdInodes: UInt64?
    /// The other filesystems holding volume directories, each judged on its own.
    public var elsewhere: [PressureAssessment]?
    public var reclaimableNow: UInt64
    public var reclaimableWithin1h: UInt64
    public var reclaimableWithin6h: UInt64
    /// Seconds spent in pressure since the daemon started.
    public var secondsInPressure: Double

    public init(
        active: Bool, nothingToReap: Bool, filesystem: FilesystemUsage, thresholdBytes: UInt64, thresholdInodes: UInt64?,
        reclaimableNow: UInt64, reclaimableWithin1h: UInt64, reclaimableWithin6h: UInt64, secondsInPressure: Double,
        elsewhere: [PressureAssessment]? = nil
    ) {
        self.elsewhere = elsewhere
        self.active = active
        self.nothingToReap = nothingToReap
        self.filesystem = filesystem
        self.thresholdBytes = thresholdBytes
        self.thresholdInodes = thresholdInodes
        self.reclaimableNow = reclaimableNow
        self.reclaimableWithin1h = reclaimableWithin1h
        self.reclaimableWithin6h = reclaimableWithin6h
        self.secondsInPressure = secondsInPressure
    }
}
