import AccessStore
import Foundation
import Logging
import NodeDiscovery
import PodSources
import PolicyFile
import Reaper
import ReaperCore
import SocketAPI
import Synchronization
import SystemdIntegration
import VolumeWatcher

/// Why a reconcile runs.
public enum ReconcileTrigger: Sendable {
    case timer
    /// The pods changed: a manifest file, or the network source's view.
    case manifestsChanged
    case reload
    /// Free space crossed into pressure, or is still short after pressure reaps.
    case diskPressure
    case request(CheckedContinuation<Plan, any Error>)
}

/// The daemon's shared state and the one place reconcile cycles run: the
/// reconcile service drives it, the socket API reads it and asks for cycles.
public final class AgentController: AgentAPIProvider, Sendable {
    struct State {
        var policy: Policy
        var plan: Plan?
        var lastReconcile: Date?
        var lastReconcileError: String?
        var lastReap: Date?
        var ready = false
        var stopping = false
        /// When the cycle now running started; nil between cycles.
        var cycleStartedAt: Date?
        /// A pods-changed cycle is queued: more changes join it (a burst of
        /// watch events is one cycle, not a backlog).
        var podChangeQueued = false
        /// Volumes whose observedSince this run has set (`markObserved`).
        var markedObserved: Set<String> = []
        var lastCycleSeconds: Double?
        /// Observe mode: `run --plan`, or the config's `dryRun` (read again on SIGHUP).
        var dryRun: Bool
        /// The last write of `metrics.textfile` failed (logged once until it works again).
        var textfileFailing = false
        /// When this controller was made: the daemon's start, for `/livez`.
        var startedAt = Date()
        /// When the last cycle ended, failed or not: `/livez` sees the loop go on.
        var lastCycleEnded: Date?
    }

    public let configuration: AgentConfiguration
    /// `run --plan`: a dry run whatever the config file says.
    let alwaysDryRun: Bool
    public var dryRun: Bool { state.withLock { $0.dryRun } }
    let store: AccessStore
    /// Where pods come from, for every plan and last check.
    let pods: any PodSource
    let watcher: VolumeWatcher
    let metrics: AgentMetricsRecorder
    let notifier: SystemdNotifier
    let logger: Logger
    let session: Int64
    /// The pod liveness check, one for the daemon's life (a missing tree is reported once).
    let podCgroups: PodCgroups
    /// Per-volume walks kept between cycles; one-shot runs have none.
    let scanCache: ScanCacheFeed
    /// `metrics.textfile`, rewritten after each cycle; nil when not configured.
    let textfile: MetricsTextfile?
    /// The kubelet filesystem's pressure state, kept between cycles (hysteresis).
    let pressureGauge: DiskPressureGauge
    private let state: Mutex<State>
    private let work = BlockingWork(label: "volume-reaper.reconcile")
    /// Kubernetes Events of reaps and breaker trips (`podSource.events`); nil: none.
    let clusterEvents: EventRecorder?
    /// Would-reaps and refusals by limits are logged when they change, not every cycle.
    let repeatedOutcomes = RepeatedOutcomes()
    let triggers: AsyncStream<ReconcileTrigger>
    private let triggerContinuation: AsyncStream<ReconcileTrigger>.Continuation

    init(
        configuration: AgentConfiguration, policy: Policy, dryRun: Bool, store: AccessStore, pods: any PodSource,
        session: Int64, watcher: VolumeWatcher, metrics: AgentMetricsRecorder, notifier: SystemdNotifier, logger: Logger,
        clusterEvents: EventRecorder? = nil
    ) {
        self.clusterEvents = clusterEvents
        self.configuration = configuration
        alwaysDryRun = dryRun
        self.store = store
        self.pods = pods
        self.session = session
        self.watcher = watcher
        self.metrics = metrics
        self.notifier = notifier
        self.logger = logger
        podCgroups = configuration.podCgroups()
        scanCache = ScanCacheFeed(
            fullScanInterval: configuration.fullScanInterval, watcher: watcher, watchReads: configuration.watchReads, logger: logger
        )
        textfile = configuration.metricsTextfile.map { MetricsTextfile(path: $0, metrics: metrics) }
        pressureGauge = DiskPressureGauge(kubeletRoot: configuration.kubeletRoot, kubeletConfig: configuration.kubeletConfig)
        state = Mutex(State(policy: policy, dryRun: dryRun || configuration.dryRun))
        AgentMode.set(dryRun: dryRun || configuration.dryRun)
        metrics.recordDryRun(dryRun || configuration.dryRun)
        // The source's state at each scrape, not only after each cycle: a
        // source that fails between cycles (every 10m, say) shows at once in
        // volume_reaper_pod_source_synced and its alert.
        metrics.onScrape { [metrics, pods] in metrics.recordPodSource(pods.status()) }
        if let clusterEvents {
            metrics.onScrape { [metrics] in
                let counts = clusterEvents.counts
                metrics.recordClusterEvents(["sent": counts.sent, "dropped": counts.dropped, "failed": counts.failed])
            }
        }
        (triggers, triggerContinuation) = AsyncStream.makeStream(of: ReconcileTrigger.self, bufferingPolicy: .unbounded)
    }

    public var policy: Policy { state.withLock { $0.policy } }

    func trigger(_ trigger: ReconcileTrigger) {
        if case .manifestsChanged = trigger {
            let queued = state.withLock { state in
                defer { state.podChangeQueued = true }
                return state.podChangeQueued
            }
            if queued { return }
        }
        triggerContinuation.yield(trigger)
    }

    /// The queued pods-changed cycle starts: a change from now on queues another.
    func podChangeTaken() {
        state.withLock { $0.podChangeQueued = false }
    }

    /// How long until free space is measured again between cycles: the
    /// policy's `pressure.checkInterval`, or `idle` without pressure mode (a
    /// reload may turn it on).
    func pressureCheckWait(idle: Duration) -> Duration {
        policy.pressure.map { .milliseconds(Int64($0.checkInterval * 1000)) } ?? idle
    }

    /// Between cycles: whether free space calls for a cycle now (see
    /// `DiskPressureGauge.wantsCycle`). Further pressure cycles only when
    /// they can free something: not in observe mode.
    func pressureWantsCycle() -> Bool {
        let (policy, plan, dryRun) = state.withLock { ($0.policy, $0.plan, $0.dryRun) }
        let reapedUnderPressure = !dryRun && (plan?.pressureFilesystems.contains { $0.pressureReaps > 0 } ?? false)
        return pressureGauge.wantsCycle(lastPlanReapedUnderPressure: reapedUnderPressure, policy: policy)
    }

    /// How long a pods-changed cycle waits so that the last cycle's end lies
    /// at least four of its durations back (at most 5 s); nil: start now.
    func podChangeCooldown(now: Date = Date()) -> Duration? {
        state.withLock { state in
            guard let ended = state.lastReconcile, let seconds = state.lastCycleSeconds else { return nil }
            let wait = min(4 * seconds, 5) - now.timeIntervalSince(ended)
            return wait > 0.001 ? .milliseconds(Int64(wait * 1000)) : nil
        }
    }

    func finishTriggers() {
        triggerContinuation.finish()
    }

    // MARK: AgentAPIProvider

    public func currentPlan() async -> Plan? { state.withLock { $0.plan } }

    public func health() async -> AgentHealth {
        let snapshot = state.withLock { $0 }
        let watcherStatus = watcher.status
        let interval = configuration.reconcileInterval
        let now = Date()
        // Healthy: ready, no cycle running past the stuck bound, and the last
        // cycle succeeded within three intervals.
        let stuck = snapshot.cycleStartedAt.map { now.timeIntervalSince($0) > configuration.stuckBound } ?? false
        let fresh = snapshot.lastReconcile.map { now.timeIntervalSince($0) < max(3 * interval, 30) } ?? false
        let podSource = pods.status()
        // A network source that fails keeps every orphan: the agent works,
        // but not as configured. The files source's problems are in the plan.
        let podSourceFailing = podSource.kind != .files && podSource.state == .failing
        let healthy = snapshot.ready && !snapshot.stopping && !stuck && fresh && snapshot.lastReconcileError == nil && !podSourceFailing
        let state = snapshot.stopping ? "stopping"
            : stuck ? "stuck"
            : !snapshot.ready || snapshot.lastReconcile == nil && snapshot.lastReconcileError == nil ? "starting"
            : healthy ? "running" : "degraded"
        var health = AgentHealth(
            healthy: healthy, state: state, watches: watcherStatus.watches, volumes: snapshot.plan?.volumes.count ?? 0,
            lastReconcile: snapshot.lastReconcile, lastReconcileError: snapshot.lastReconcileError,
            reconcileRunningSince: snapshot.cycleStartedAt, dryRun: dryRun, podSource: podSource
        )
        let inputs = AgentProbes.Inputs(
            now: now, startedAt: snapshot.startedAt, ready: snapshot.ready, stopping: snapshot.stopping,
            cycleStartedAt: snapshot.cycleStartedAt, lastCycleEnded: snapshot.lastCycleEnded, lastReconcile: snapshot.lastReconcile,
            lastReconcileError: snapshot.lastReconcileError, hasPlan: snapshot.plan != nil, podSource: podSource,
            stuckBound: configuration.stuckBound, reconcileInterval: interval,
            watchdog: notifier.watchdogInterval.map { (interval: $0.timeInterval, fed: isLive(limit: $0)) }
        )
        let live = AgentProbes.live(inputs)
        health.live = live
        health.ready = AgentProbes.ready(inputs, live: live)
        if let plan = snapshot.plan, plan.pressure != nil { health.pressure = pressureStatus(plan: plan, now: now) }
        health.liveness = livenessStatus()
        if let seconds = snapshot.lastCycleSeconds {
            let scans = scanCache.lastCycle
            health.scans = ScanStatus(
                walked: scans.last.walked, reused: scans.last.reused, fullWalk: scans.last.fullWalk,
                lastFullWalk: scans.lastFullWalk, lastCycleSeconds: seconds
            )
        }
        return health
    }

    /// Queues a cycle and waits for its plan; refused at once (503) while the
    /// running cycle is past the stuck bound, since a queued request would
    /// wait as long as it does.
    public func reconcileNow() async throws -> Plan {
        if let started = state.withLock({ $0.cycleStartedAt }) {
            let running = Date().timeIntervalSince(started)
            if running > configuration.stuckBound {
                throw ReconcileUnavailable(
                    code: "reconcile-stuck",
                    message: "a reconcile has been running for \(DurationText.format(running)) (stuck after \(DurationText.format(configuration.stuckBound))); no other can start until it ends"
                )
            }
        }
        return try await withCheckedThrowingContinuation { continuation in
            triggerContinuation.yield(.request(continuation))
        }
    }

    // MARK: Cycles

    /// Moves what the watcher saw into the store (coalesced writes).
    func flushAccesses() async {
        _ = try? await work.run { [self] in storeWatcherAccesses() }
    }

    /// Drains the watcher into the store. Runs on the work queue only, where
    /// the plan and every last check read: drain and write happen together,
    /// so for those readers an access is always in the watcher or the store,
    /// never in between. A failed write puts the drain back.
    private func storeWatcherAccesses() -> WatcherDrain {
        let drain = watcher.drainAccesses()
        guard !drain.isEmpty else { return drain }
        do {
            if !drain.accesses.isEmpty { try store.recordAccesses(drain.accesses, source: .inotify) }
            if !drain.removed.isEmpty {
                // Forgotten rows lose their observedSince: mark them again if they come back.
                state.withLock { $0.markedObserved.subtract(drain.removed) }
                try store.forget(Array(drain.removed))
            }
        } catch {
            watcher.requeue(drain)
            logger.error("could not write the access store", metadata: ["error": "\(error)"])
        }
        return drain
    }

    /// Last-access records for `paths` as of now: for the plan and again for
    /// every last check before a deletion. Every event the kernel queued
    /// before this call counts (design §5.6, §5.7): the watcher handles its
    /// queue first, its accesses are stored, and after a lost signal (an
    /// inotify overflow) every path counts as accessed at that moment, or now
    /// while the rescan runs. Runs on the work queue.
    func accessRecords(covering paths: [String], policy: Policy) throws -> [String: AccessRecord] {
        watcher.synchronize()
        let drain = storeWatcherAccesses()
        let now = Date()
        var records = try store.reconcilerRecords(now: now, policy: policy, covering: paths)
        // Also from memory: a failed store write must not hide an access.
        for (path, time) in drain.accesses { Self.note(access: time, of: path, in: &records) }
        if let lost = watcher.lostSignalsAccess(now: now) {
            for path in paths { Self.note(access: lost, of: path, in: &records) }
        }
        return records
    }

    private static func note(access time: Date, of path: String, in records: inout [String: AccessRecord]) {
        guard var record = records[path] else {
            records[path] = AccessRecord(lastAccess: time, source: .inotify)
            return
        }
        guard time > record.lastAccess else { return }
        record.lastAccess = time
        record.source = .inotify
        records[path] = record
    }

    func heartbeat() async {
        let store = store
        let session = session
        try? await work.run { try store.heartbeat(session: session, at: Date()) }
    }

    /// One reconcile (and, unless a dry run, reap) cycle.
    @discardableResult
    func reconcile(trigger: String) async throws -> Plan {
        state.withLock { $0.cycleStartedAt = Date() }
        defer {
            state.withLock { state in
                state.cycleStartedAt = nil
                state.lastCycleEnded = Date()
            }
        }
        await flushAccesses()
        let started = ContinuousClock.now
        let policy = self.policy
        let configuration = configuration
        let dryRun = self.dryRun
        let store = store
        let logger = logger
        let podCgroups = podCgroups
        let pods = pods
        let watched = watcher.knownVolumes
        let scanCache = scanCache
        do {
            let (result, scans) = try await work.run { [self] () throws -> (ReapCycle.Result, VolumeScanCache.CycleCounts) in
                let now = Date()
                // Only volumes not marked yet in this run: marking is a no-op
                // for the rest (observedSince is set once), and 300 upserts a
                // cycle were a good part of a quiet node's cost.
                let unmarked = state.withLock { $0.markedObserved }
                let fresh = watched.subtracting(unmarked)
                try store.markObserved(Array(fresh), since: now)
                state.withLock { $0.markedObserved = $0.markedObserved.intersection(watched).union(fresh) }
                var builder = PlanBuilder(configuration: configuration, policy: policy, pods: pods, podCgroups: podCgroups)
                builder.pressureGauge = pressureGauge
                let cycle = scanCache.beginCycle(policy: policy, now: now)
                let result: ReapCycle.Result
                do {
                    result = try ReapCycle(builder: builder, dryRun: dryRun, repeatedOutcomes: repeatedOutcomes).run(
                        access: { [self] paths in try accessRecords(covering: paths, policy: policy) },
                        observations: store, scans: cycle, logger: logger
                    )
                } catch {
                    scanCache.invalidate()
                    throw error
                }
                let scans = scanCache.finish(cycle)
                scanCache.forget(result.report.keptAtLastCheck.keys)
                for outcome in result.report.reaped {
                    try? store.markReaped(path: outcome.verdict.path, at: Date(), bytesFreed: outcome.stats.bytesFreed)
                }
                return (result, scans)
            }
            let finished = Date()
            let elapsed = (ContinuousClock.now - started).components
            let cycleSeconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
            // Queued, never awaited: a slow or refusing API server costs the cycle nothing.
            if let clusterEvents {
                for event in ReapClusterEvents.events(result.report, plan: result.snapshot.plan) { clusterEvents.record(event) }
            }
            metrics.recordPlan(result.snapshot.plan)
            metrics.recordReaps(count: result.report.reaped.count, bytes: result.report.bytesFreed)
            metrics.recordReconcile(duration: ContinuousClock.now - started, at: finished)
            metrics.recordPodSource(pods.status())
            metrics.recordReclaimable(result.snapshot.plan)
            metrics.recordPressure(pressureStatus(plan: result.snapshot.plan, now: finished))
            metrics.recordScans(walked: scans.walked, reused: scans.reused, lastFullWalk: scanCache.lastCycle.lastFullWalk)
            let watcherStatus = watcher.status
            metrics.recordWatcher(
                watches: watcherStatus.watches, events: watcherStatus.eventsHandled, overflows: UInt64(watcherStatus.overflows),
                polledVolumes: watcherStatus.polledVolumes
            )
            metrics.recordReconcileFailure(false)
            metrics.recordLivenessTree(found: podCgroups.treeStatus?.found ?? false)
            await writeTextfile()
            var served = result.snapshot.plan
            served.keepAfterLastCheck(result.report.keptAtLastCheck)
            let lastReap: Date? = state.withLock { state in
                state.plan = served
                state.lastReconcile = finished
                state.lastReconcileError = nil
                state.lastCycleSeconds = cycleSeconds
                if !result.report.reaped.isEmpty { state.lastReap = finished }
                return state.lastReap
            }
            for pressure in result.snapshot.plan.pressureFilesystems where pressure.nothingToReap {
                logger.warning("disk pressure with nothing to reap: no terminated pod's or orphan's volume qualifies", metadata: [
                    "filesystem": "\(pressure.filesystem.path)", "free_bytes": "\(pressure.filesystem.availableBytes)",
                    "threshold_bytes": "\(pressure.thresholdBytes)", "free_inodes": "\(pressure.filesystem.availableInodes)",
                ])
            }
            logger.info("reconciled", metadata: [
                "trigger": "\(trigger)", "volumes": "\(result.snapshot.plan.volumes.count)",
                "idle": "\(result.snapshot.plan.summary.reap)", "reaped": "\(result.report.reaped.count)",
                "walked": "\(scans.walked)", "reused": "\(scans.reused)", "full_walk": "\(scans.fullWalk)",
                "dry_run": "\(dryRun)",
            ])
            try? notifier.status(statusLine(plan: served, watches: watcherStatus.watches, lastReap: lastReap))
            return served
        } catch {
            state.withLock { $0.lastReconcileError = "\(error)" }
            logger.error("reconcile failed; nothing was deleted in this cycle", metadata: ["trigger": "\(trigger)", "error": "\(error)"])
            metrics.recordReconcileFailure(true)
            await writeTextfile()
            throw error
        }
    }

    /// Rewrites `metrics.textfile` (off the cooperative pool); a failure is
    /// logged once, and again only after a write worked.
    private func writeTextfile() async {
        guard let textfile else { return }
        let failure: String?
        do {
            try await work.run { try textfile.write() }
            failure = nil
        } catch {
            failure = "\(error)"
        }
        let wasFailing = state.withLock { state in
            defer { state.textfileFailing = failure != nil }
            return state.textfileFailing
        }
        if let failure, !wasFailing {
            logger.warning("cannot write the metrics textfile", metadata: ["textfile": "\(textfile.path)", "error": "\(failure)"])
        } else if failure == nil, wasFailing {
            logger.notice("metrics textfile written again", metadata: ["textfile": "\(textfile.path)"])
        }
    }

    /// The last search for the kubelet's pod cgroups, for `/healthz`; nil before the first.
    func livenessStatus() -> LivenessStatus? {
        guard let status = podCgroups.treeStatus else { return nil }
        let state = status.unreadable != nil ? "unreadable" : status.found ? "found" : "missing"
        return LivenessStatus(state: state, trees: status.trees, problem: status.unreadable ?? status.problem)
    }

    /// Pressure mode's state for status and metrics; nil without a pressure section.
    func pressureStatus(plan: Plan, now: Date) -> PressureStatus? {
        guard let assessment = plan.pressure else { return nil }
        let seconds = pressureGauge.status(now: now).secondsInPressure
        let filesystems = plan.pressureFilesystems
        return PressureStatus(
            active: filesystems.contains(where: \.active), nothingToReap: filesystems.contains(where: \.nothingToReap),
            filesystem: assessment.filesystem, thresholdBytes: assessment.thresholdBytes, thresholdInodes: assessment.thresholdInodes,
            reclaimableNow: Forecast.reclaimable(in: plan, within: 0), reclaimableWithin1h: Forecast.reclaimable(in: plan, within: 3600),
            reclaimableWithin6h: Forecast.reclaimable(in: plan, within: 6 * 3600), secondsInPressure: seconds,
            elsewhere: plan.pressureElsewhere
        )
    }

    func statusLine(plan: Plan, watches: Int, lastReap: Date?) -> String {
        let reap = lastReap.map { RFC3339.format($0) } ?? "never"
        let mode = self.dryRun ? " (dry run)" : ""
        let source = pods.status()
        var pods = ""
        if source.kind != .files {
            pods = ", pods from \(source.kind.rawValue) \(source.state.rawValue)"
            if let problemKind = source.problemKind { pods += " (\(problemKind))" }
        }
        let pressure = plan.pressureFilesystems.contains(where: \.active) ? ", DISK PRESSURE" : ""
        return "\(plan.volumes.count) volumes, \(watches) watches, \(plan.summary.reap) idle, last reap \(reap)\(pods)\(pressure)\(mode)"
    }

    /// Whether the watchdog may be fed: ready, and no cycle stuck for longer
    /// than `limit` (a wedged walk on a hung NFS mount must let systemd act).
    func isLive(limit: Duration) -> Bool {
        state.withLock { state in
            guard state.ready else { return false }
            guard let started = state.cycleStartedAt else { return true }
            return Date().timeIntervalSince(started) < limit.timeInterval
        }
    }

    func markReady() {
        state.withLock { $0.ready = true }
    }

    func markStopping() {
        state.withLock { $0.stopping = true }
    }

    /// SIGHUP: read `dryRun` again from the config file, so turning deletion
    /// on or off is one edit and a reload. `run --plan` stays a dry run. A
    /// config file that no longer loads deletes nothing until it does (fail
    /// closed: it may have been the edit that meant to stop deletion).
    func reloadMode() {
        guard let file = configuration.file else { return }
        var next: Bool
        do {
            next = try AgentConfiguration.load(path: file).dryRun
        } catch {
            next = true
            logger.error("config reload failed; observe mode (nothing is deleted) until it loads", metadata: ["error": "\(error)"])
        }
        next = next || alwaysDryRun
        let previous = state.withLock { state in
            defer { state.dryRun = next }
            return state.dryRun
        }
        AgentMode.set(dryRun: next)
        metrics.recordDryRun(next)
        if previous != next {
            logger.notice("mode changed", metadata: ["dry_run": "\(next)", "config": "\(file)"])
        }
    }

    /// SIGHUP: read the policy again; a bad file keeps the old one.
    func reloadPolicy() {
        do {
            let (policy, source) = try PolicyLoader.resolveDefault(explicitPath: configuration.policy)
            state.withLock { $0.policy = policy }
            logger.notice("policy reloaded", metadata: ["policy": "\(source)"])
        } catch {
            logger.error("policy reload failed; keeping the previous policy", metadata: ["error": "\(error)"])
        }
    }
}
