import Foundation

/// What becomes reclaimable over the next hours if nothing touches it again
/// (`volume-reaper forecast`, `GET /v1/forecast`): built from a plan's
/// `reapableAt`, hour by hour.
public struct Forecast: Sendable, Hashable, Codable {
    public struct Volume: Sendable, Hashable, Codable {
        public var path: String
        public var podUID: String
        public var namespace: String?
        public var pod: String?
        public var name: String
        public var bytes: UInt64
        /// nil: reclaimable now (verdict reap).
        public var reapableAt: Date?
    }

    public struct Bucket: Sendable, Hashable, Codable {
        /// The hour (from, through], counted from `generatedAt`.
        public var from: Date
        public var through: Date
        public var bytes: UInt64
        public var volumes: Int
        /// The biggest volumes of the hour, biggest first (at most three).
        public var biggest: [Volume]
    }

    public var generatedAt: Date
    public var withinSeconds: Int
    /// Bytes the plan reaps now.
    public var reclaimableNow: UInt64
    public var volumesNow: Int
    /// Bytes becoming reclaimable within the window (not counting now).
    public var reclaimableWithin: UInt64
    public var buckets: [Bucket]

    /// Hour buckets up to `within` (a partial last hour is a bucket too).
    public static func build(from plan: Plan, within: TimeInterval) -> Forecast {
        let now = plan.generatedAt
        let hours = max(1, Int((within / 3600).rounded(.up)))
        func volume(_ verdict: VolumeVerdict) -> Volume {
            Volume(path: verdict.path, podUID: verdict.podUID, namespace: verdict.namespace, pod: verdict.pod, name: verdict.name, bytes: verdict.bytes, reapableAt: verdict.verdict == .reap ? nil : verdict.reapableAt)
        }
        let reaps = plan.volumes.filter { $0.verdict == .reap }
        let upcoming = plan.volumes.filter { verdict in
            guard verdict.verdict == .keep, let at = verdict.reapableAt else { return false }
            return at.timeIntervalSince(now) <= within
        }
        var buckets: [Bucket] = []
        for hour in 0..<hours {
            let from = now.addingTimeInterval(TimeInterval(hour) * 3600)
            let through = min(now.addingTimeInterval(TimeInterval(hour + 1) * 3600), now.addingTimeInterval(within))
            // A time already past (a clock step) counts in the first hour.
            let inside = upcoming.filter { verdict in
                let at = verdict.reapableAt!
                return (hour == 0 || at > from) && at <= through
            }
            let biggest = inside.sorted { ($0.bytes, $1.path) > ($1.bytes, $0.path) }.prefix(3).map(volume)
            buckets.append(Bucket(from: from, through: through, bytes: inside.reduce(0) { $0 + $1.bytes }, volumes: inside.count, biggest: biggest))
        }
        return Forecast(
            generatedAt: now, withinSeconds: Int(within.rounded()), reclaimableNow: reaps.reduce(0) { $0 + $1.bytes },
            volumesNow: reaps.count, reclaimableWithin: upcoming.reduce(0) { $0 + $1.bytes }, buckets: buckets
        )
    }

    /// Bytes reclaimable now plus those that become so within `seconds`.
    public static func reclaimable(in plan: Plan, within seconds: TimeInterval) -> UInt64 {
        plan.volumes.reduce(0) { total, verdict in
            if verdict.verdict == .reap { return total + verdict.bytes }
            guard let at = verdict.reapableAt, at.timeIntervalSince(plan.generatedAt) <= seconds else { return total }
            return total + verdict.bytes
        }
    }

    /// The terminal chart: one bar per hour, cumulative size, the biggest volume named.
    public func render(width: Int = 40) -> String {
        var lines = ["reclaimable now: \(ByteCount.format(reclaimableNow)) (\(volumesNow) volumes)"]
        lines.append("becoming reclaimable within \(DurationText.format(TimeInterval(withinSeconds))) if untouched: \(ByteCount.format(reclaimableWithin))")
        lines.append("")
        let largest = max(buckets.map(\.bytes).max() ?? 0, 1)
        var cumulative = reclaimableNow
        for (index, bucket) in buckets.enumerated() {
            cumulative += bucket.bytes
            let length = bucket.bytes == 0 ? 0 : max(1, Int(Double(width) * Double(bucket.bytes) / Double(largest)))
            let bar = String(repeating: "#", count: length).padding(toLength: width, withPad: " ", startingAt: 0)
            let label = "+\(index)h..\(index + 1)h"
            var line = "\(label.padding(toLength: 9, withPad: " ", startingAt: 0)) \(bar) \(ByteCount.format(bucket.bytes).padding(toLength: 10, withPad: " ", startingAt: 0)) total \(ByteCount.format(cumulative))"
            if let top = bucket.biggest.first {
                let owner = top.pod.map { "\(top.namespace ?? "")/\($0)" } ?? "(orphan \(top.podUID.prefix(8)))"
                line += "  biggest: \(owner) \(top.name) \(ByteCount.format(top.bytes))"
                if bucket.volumes > 1 { line += " (+\(bucket.volumes - 1) more)" }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
