import Foundation
import Logging
import NodeDiscovery
import PodSources
import Reaper
import ReaperCore
import SocketAPI
import VolumeWatcher

/// One daemon cycle as a value: store bookkeeping, the scan cache, the plan
/// and the reaper's deletions (`ReapCycle`), run wholly on the work queue and
/// ended in one `CycleOutcome` that every observer reads. It never throws: a
/// failed cycle is an outcome too.
struct DaemonCycle: Sendable {
    var configuration: AgentConfiguration
    var policy: Policy
    var dryRun: Bool
    var pods: any PodSource
    var podCgroups: PodCgroups
    var pressureGauge: DiskPressureGauge
    var scanCache: ScanCacheFeed
    var accesses: AccessLedger
    var repeatedOutcomes: RepeatedOutcomes
    var logger: Logger

    /// Runs the cycle; `lastReap` is when the previous cycles last reaped.
    func run(trigger: String, lastReap: Date?) -> CycleOutcome {
        let startedAt = Date()
        let started = ContinuousClock.now
        accesses.flush()
        let result = Result { try planAndReap() }
        let finishedAt = Date()
        let ended: CycleOutcome.Result
        var lastReap = lastReap
        switch result {
        case .success(let (cycle, scans)):
            var served = cycle.snapshot.plan
            served.keepAfterLastCheck(cycle.report.keptAtLastCheck)
            ended = .planned(CycleOutcome.Planned(
                plan: cycle.snapshot.plan, served: served, report: cycle.report, scans: scans,
                lastFullWalk: scanCache.lastCycle.lastFullWalk,
                pressure: PressureStatus(plan: cycle.snapshot.plan, secondsInPressure: pressureGauge.status(now: finishedAt).secondsInPressure)
            ))
            if !cycle.report.reaped.isEmpty { lastReap = finishedAt }
        case .failure(let error):
            ended = .failed("\(error)")
        }
        return CycleOutcome(
            trigger: trigger, startedAt: startedAt, finishedAt: finishedAt, duration: ContinuousClock.now - started,
            dryRun: dryRun, result: ended, lastReap: lastReap, podSource: pods.status(), watcher: accesses.watcher.status,
            livenessTreeFound: podCgroups.treeStatus?.found ?? false
        )
    }

    private func planAndReap() throws -> (ReapCycle.Result, VolumeScanCache.CycleCounts) {
        let now = Date()
        try accesses.markObserved(accesses.watcher.knownVolumes, since: now)
        var builder = PlanBuilder(configuration: configuration, policy: policy, pods: pods, podCgroups: podCgroups)
        builder.pressureGauge = pressureGauge
        let cycle = scanCache.beginCycle(policy: policy, now: now)
        let result: ReapCycle.Result
        do {
            let accesses = accesses, policy = policy
            result = try ReapCycle(builder: builder, dryRun: dryRun, repeatedOutcomes: repeatedOutcomes).run(
                access: { paths in try accesses.records(covering: paths, policy: policy) },
                observations: accesses.store, scans: cycle, logger: logger
            )
        } catch {
            scanCache.invalidate()
            throw error
        }
        let scans = scanCache.finish(cycle)
        scanCache.forget(result.report.keptAtLastCheck.keys)
        accesses.markReaped(result.report)
        return (result, scans)
    }
}
