import Foundation
import Logging
import ReaperCore
import SocketAPI
import Synchronization
import SystemdIntegration

/// The metrics a cycle moves; the textfile observer, after it, writes them out.
extension AgentMetricsRecorder: CycleObserver {
    func cycleEnded(_ outcome: CycleOutcome) {
        guard let planned = outcome.planned else {
            recordReconcileFailure(true)
            return
        }
        recordPlan(planned.plan)
        recordReaps(count: planned.report.reaped.count, bytes: planned.report.bytesFreed)
        recordReconcile(duration: outcome.duration, at: outcome.finishedAt)
        recordPodSource(outcome.podSource)
        recordReclaimable(planned.plan)
        recordPressure(planned.pressure)
        recordScans(walked: planned.scans.walked, reused: planned.scans.reused, lastFullWalk: planned.lastFullWalk)
        let watcher = outcome.watcher
        recordWatcher(watches: watcher.watches, events: watcher.eventsHandled, overflows: UInt64(watcher.overflows), polledVolumes: watcher.polledVolumes)
        recordReconcileFailure(false)
        recordLivenessTree(found: outcome.livenessTreeFound)
    }
}

/// `metrics.textfile`, rewritten after each cycle, failed or not; a failure
/// is logged once, and again only after a write worked.
final class TextfileObserver: CycleObserver {
    let textfile: MetricsTextfile
    let logger: Logger
    private let failing = Mutex(false)

    init(textfile: MetricsTextfile, logger: Logger) {
        self.textfile = textfile
        self.logger = logger
    }

    func cycleEnded(_ outcome: CycleOutcome) {
        let failure: String?
        do {
            try textfile.write()
            failure = nil
        } catch {
            failure = "\(error)"
        }
        let wasFailing = failing.withLock { failing in
            defer { failing = failure != nil }
            return failing
        }
        if let failure, !wasFailing {
            logger.warning("cannot write the metrics textfile", metadata: ["textfile": "\(textfile.path)", "error": "\(failure)"])
        } else if failure == nil, wasFailing {
            logger.notice("metrics textfile written again", metadata: ["textfile": "\(textfile.path)"])
        }
    }
}

/// The journal's line per cycle, and the warning an operator must act on.
struct CycleJournal: CycleObserver {
    let logger: Logger

    func cycleEnded(_ outcome: CycleOutcome) {
        guard let planned = outcome.planned else {
            if case .failed(let error) = outcome.result {
                logger.error("reconcile failed; nothing was deleted in this cycle", metadata: ["trigger": "\(outcome.trigger)", "error": "\(error)"])
            }
            return
        }
        for pressure in planned.plan.pressureFilesystems where pressure.nothingToReap {
            logger.warning("disk pressure with nothing to reap: no terminated pod's or orphan's volume qualifies", metadata: [
                "filesystem": "\(pressure.filesystem.path)", "free_bytes": "\(pressure.filesystem.availableBytes)",
                "threshold_bytes": "\(pressure.thresholdBytes)", "free_inodes": "\(pressure.filesystem.availableInodes)",
            ])
        }
        logger.info("reconciled", metadata: [
            "trigger": "\(outcome.trigger)", "volumes": "\(planned.plan.volumes.count)",
            "idle": "\(planned.plan.summary.reap)", "reaped": "\(planned.report.reaped.count)",
            "walked": "\(planned.scans.walked)", "reused": "\(planned.scans.reused)", "full_walk": "\(planned.scans.fullWalk)",
            "dry_run": "\(outcome.dryRun)",
        ])
    }
}

/// systemd's STATUS= line (`systemctl status`), after each planned cycle.
struct CycleStatusNotifier: CycleObserver {
    let notifier: SystemdNotifier

    func cycleEnded(_ outcome: CycleOutcome) {
        guard let planned = outcome.planned else { return }
        try? notifier.status(Self.statusLine(planned.served, outcome: outcome))
    }

    static func statusLine(_ plan: Plan, outcome: CycleOutcome) -> String {
        let reap = outcome.lastReap.map { RFC3339.format($0) } ?? "never"
        let mode = outcome.dryRun ? " (dry run)" : ""
        let source = outcome.podSource
        var pods = ""
        if source.kind != .files {
            pods = ", pods from \(source.kind.rawValue) \(source.state.rawValue)"
            if let problemKind = source.problemKind { pods += " (\(problemKind))" }
        }
        let pressure = plan.pressureFilesystems.contains(where: \.active) ? ", DISK PRESSURE" : ""
        return "\(plan.volumes.count) volumes, \(outcome.watcher.watches) watches, \(plan.summary.reap) idle, last reap \(reap)\(pods)\(pressure)\(mode)"
    }
}
