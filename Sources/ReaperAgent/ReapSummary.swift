import Foundation
import Reaper
import ReaperCore

/// What `--once` prints: each volume acted on, what was kept and why, bytes freed.
public struct ReapSummary: Sendable, Codable {
    public struct Entry: Sendable, Codable {
        public var path: String
        public var action: String
        public var reasons: [String]
        public var bytesFreed: UInt64
        public var filesRemoved: Int
        public var detail: String?
    }

    public var generatedAt: Date
    public var reaped: Int
    public var kept: Int
    public var bytesFreed: UInt64
    public var alerts: [String]
    public var volumes: [Entry]
    public var podDirectories: [Entry]

    public init(_ result: ReapCycle.Result) {
        let report = result.report
        let plan = result.snapshot.plan
        var acted: [String: ReapOutcome] = [:]
        for outcome in report.outcomes { acted[outcome.verdict.path] = outcome }
        volumes = plan.volumes.map { verdict in
            if let outcome = acted[verdict.path] {
                return Entry(path: verdict.path, action: outcome.action.rawValue, reasons: outcome.reasons.map(\.rawValue),
                             bytesFreed: outcome.action == .reaped || outcome.action == .partiallyReaped ? outcome.stats.bytesFreed : 0,
                             filesRemoved: outcome.stats.filesRemoved, detail: outcome.detail)
            }
            return Entry(path: verdict.path, action: "kept", reasons: verdict.reasons.map(\.rawValue), bytesFreed: 0, filesRemoved: 0, detail: nil)
        }
        podDirectories = report.podDirectories.map {
            Entry(path: $0.path, action: $0.removed ? "reaped" : $0.isPartial ? ReapOutcome.Action.partiallyReaped.rawValue : "kept",
                  reasons: ([Reason.orphan] + $0.reasons).map(\.rawValue),
                  bytesFreed: $0.stats.bytesFreed, filesRemoved: $0.stats.filesRemoved, detail: $0.detail)
        }
        generatedAt = plan.generatedAt
        reaped = report.reaped.count
        kept = plan.volumes.count - reaped
        bytesFreed = report.bytesFreed + report.podDirectories.reduce(0) { $0 + $1.stats.bytesFreed }
        alerts = plan.alerts.map(\.message)
    }

    public func jsonData() throws -> Data { try Plan.encoder().encode(self) }

    /// One line per volume, reaps first, and a summary line.
    public func table() -> String {
        var lines: [String] = []
        let ordered = volumes.sorted { ($0.action == "reaped" ? 0 : 1, $0.path) < ($1.action == "reaped" ? 0 : 1, $1.path) }
        let width = ordered.map(\.action.count).max() ?? 6
        for entry in ordered + podDirectories {
            let size = entry.action == "reaped" || entry.action == "partially-reaped" ? ByteCount.format(entry.bytesFreed) : ""
            let why = entry.reasons.joined(separator: ",") + (entry.detail.map { " (\($0))" } ?? "")
            lines.append("\(entry.action.padding(toLength: width, withPad: " ", startingAt: 0))  \(entry.path)  \(size.isEmpty ? "" : size + "  ")\(why)")
        }
        for alert in alerts { lines.append("ALERT: \(alert)") }
        lines.append("reaped \(reaped) volumes (\(ByteCount.format(bytesFreed)) freed), kept \(kept)")
        return lines.joined(separator: "\n") + "\n"
    }
}
