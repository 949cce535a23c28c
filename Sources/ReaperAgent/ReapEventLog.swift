import Foundation
import Logging
import Synchronization
import Reaper
import ReaperCore
import SystemdIntegration

/// Logs every reap, would-reap, refusal and failure as one journal entry with
/// a stable MESSAGE_ID and the fields of design §6 (the journald handler turns
/// metadata keys into upper-case field names).
public struct ReapEventLog: Sendable {
    public var logger: Logger
    /// The daemon's memory of the last cycle's would-reaps and refusals by
    /// limits; nil (one-shot runs): every entry is logged.
    public var repeats: RepeatedOutcomes?

    public init(logger: Logger, repeats: RepeatedOutcomes? = nil) {
        self.logger = logger
        self.repeats = repeats
    }

    public func record(_ report: ReapReport, plan: Plan) {
        let logged = repeats?.fresh(report.outcomes) ?? Array(report.outcomes.indices)
        for alert in plan.alerts {
            var metadata = MessageID.orphanCircuitBreaker.metadata
            metadata["reason"] = .string(alert.code.rawValue)
            metadata["dry_run"] = .string(report.dryRun ? "true" : "false")
            logger.critical("\(alert.message)", metadata: metadata)
        }
        for index in logged {
            record(report.outcomes[index], dryRun: report.dryRun)
        }
        for directory in report.podDirectories {
            var metadata = MessageID.podDirectoryReaped.metadata
            metadata["volume_path"] = .string(directory.path)
            let uid = UserText.excerpt(URL(fileURLWithPath: directory.path).lastPathComponent, limit: 253)
            metadata["pod_uid"] = .string(URL(fileURLWithPath: directory.path).lastPathComponent)
            metadata["reason"] = .string(Reason.orphan.rawValue)
            metadata["bytes_freed"] = .stringConvertible(directory.stats.bytesFreed)
            metadata["files_removed"] = .stringConvertible(directory.stats.filesRemoved)
            metadata["dry_run"] = "false"
            if directory.removed {
                logger.info("removed orphan pod directory \(uid) (\(ByteCountText.format(directory.stats.bytesFreed)))", metadata: metadata)
            } else if directory.isPartial {
                // Part of it is gone: a failure to report, never a keep.
                metadata["message_id"] = .string(MessageID.reapFailed.rawValue)
                metadata["reason"] = .string(directory.reasons.map(\.rawValue).joined(separator: ","))
                metadata["detail"] = .string(directory.detail ?? "")
                logger.error("orphan pod directory \(uid) partially removed (\(ByteCountText.format(directory.stats.bytesFreed))); the rest is kept", metadata: metadata)
            } else {
                metadata["message_id"] = .string(MessageID.volumeKeptAtLastCheck.rawValue)
                metadata["bytes_freed"] = "0"
                metadata["reason"] = .string(([Reason.orphan] + directory.reasons).map(\.rawValue).joined(separator: ","))
                metadata["detail"] = .string(directory.detail ?? "")
                logger.notice("kept orphan pod directory \(uid)", metadata: metadata)
            }
        }
    }

    public func record(_ outcome: ReapOutcome, dryRun: Bool) {
        let verdict = outcome.verdict
        var metadata: Logger.Metadata = [
            "volume_path": .string(verdict.path),
            "pod_uid": .string(verdict.podUID),
            "pod_namespace": .string(verdict.namespace ?? ""),
            "pod_name": .string(verdict.pod ?? ""),
            "volume_plugin": .string(verdict.plugin.unescaped),
            "volume_name": .string(verdict.name),
            "idle_seconds": .stringConvertible(verdict.idleSeconds),
            "bytes_freed": .stringConvertible(outcome.action == .reaped || outcome.action == .partiallyReaped ? outcome.stats.bytesFreed : 0),
            "files_removed": .stringConvertible(outcome.stats.filesRemoved),
            "reason": .string(outcome.reasons.map(\.rawValue).joined(separator: ",")),
            "dry_run": .string(dryRun ? "true" : "false"),
        ]
        if let detail = outcome.detail { metadata["detail"] = .string(detail) }
        if let before = outcome.freeBytesBefore { metadata["free_bytes_before"] = .stringConvertible(before) }
        if let after = outcome.freeBytesAfter { metadata["free_bytes_after"] = .stringConvertible(after) }
        if let filesystem = outcome.filesystem { metadata["filesystem"] = .string(filesystem) }
        if !outcome.unmounted.isEmpty { metadata["unmounted"] = .string(outcome.unmounted.joined(separator: ",")) }
        // What went, in words; the fields above stay for machines.
        let message = ReapMessageText.message(outcome)
        switch outcome.action {
        case .reaped:
            metadata.merge(MessageID.volumeReaped.metadata) { $1 }
            logger.info("\(message)", metadata: metadata)
        case .wouldReap:
            metadata.merge(MessageID.volumeWouldReap.metadata) { $1 }
            metadata["bytes_freed"] = .stringConvertible(verdict.bytes)
            logger.notice("\(message)", metadata: metadata)
        case .keptAtLastCheck:
            metadata.merge(MessageID.volumeKeptAtLastCheck.metadata) { $1 }
            logger.notice("\(message)", metadata: metadata)
        case .refusedByLimits:
            metadata.merge(MessageID.reapRefusedByLimits.metadata) { $1 }
            logger.warning("\(message)", metadata: metadata)
        case .failed:
            metadata.merge(MessageID.reapFailed.metadata) { $1 }
            logger.error("\(message)", metadata: metadata)
        case .partiallyReaped:
            // Under the failure ID: part of the volume is gone, the rest kept.
            metadata.merge(MessageID.reapFailed.metadata) { $1 }
            logger.error("\(message)", metadata: metadata)
        }
    }
}

/// A daemon in observe mode on a node with idle volumes would log the same
/// "would reap" for each of them every cycle, forever, and a per-cycle cap
/// the same refusals: journald noise and CPU for nothing. An outcome that only
/// repeats the previous cycle's (same volume, same action, same reasons) is
/// not logged again; any change, and every reap, refusal at the last check and
/// failure, is.
public final class RepeatedOutcomes: Sendable {
    /// An outcome as far as repetition goes. Its strings share the outcome's
    /// storage: a node's worth of keys costs the set's table, no copies.
    private struct Key: Hashable {
        var action: ReapOutcome.Action
        var path: String
        var reasons: [Reason]
    }

    private let previous = Mutex<Set<Key>>([])

    public init() {}

    /// The indices of the outcomes to log, in order.
    func fresh(_ outcomes: [ReapOutcome]) -> [Int] {
        var seen = Set<Key>()
        var fresh: [Int] = []
        let before = previous.withLock { $0 }
        for (index, outcome) in outcomes.enumerated() {
            guard outcome.action == .wouldReap || outcome.action == .refusedByLimits else {
                fresh.append(index)
                continue
            }
            let key = Key(action: outcome.action, path: outcome.verdict.path, reasons: outcome.reasons)
            seen.insert(key)
            if !before.contains(key) { fresh.append(index) }
        }
        previous.withLock { $0 = seen }
        return fresh
    }
}
