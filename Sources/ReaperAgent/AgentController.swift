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
import SystemCalls
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
    /// `POST /v1/reconcile`: the waiting requests are in the controller's
    /// state, and all of them get the plan of the next cycle.
    case request
}

/// The daemon's shared state and its trigger queue. Cycles (`DaemonCycle`)
/// run one at a time on the work queue; observers read each outcome; the
/// socket API reads the state and asks for cycles.
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
        var lastCycleSeconds: Double?
        /// Observe mode: `run --plan`, or the config's `dryRun` (read again on SIGHUP).
        var dryRun: Bool
        /// When this controller was made: the daemon's start, for `/livez`.
        var startedAt = Date()
        /// When the last cycle ended, failed or not: `/livez` sees the loop go on.
        var lastCycleEnded: Date?
        /// `POST /v1/reconcile` requests waiting for the next cycle's plan.
        var waiting: [CheckedContinuation<Plan, any Error>] = []
        /// The trigger queue is closed (stopping, or cancelled): requests are
        /// answered at once with an error.
        var closed = false
    }

    public let configuration: AgentConfiguration
    /// `run --plan`: a dry run whatever the config file says.
    let alwaysDryRun: Bool
    /// What every cycle is made of; policy and mode are filled in from the state.
    let cycle: DaemonCycle
    /// Metrics, the textfile, the journal line, systemd's status: in order.
    let observers: [any CycleObserver]
    let metrics: AgentMetricsRecorder
    let notifier: SystemdNotifier
    let logger: Logger
    let session: Int64
    private let state: Mutex<State>
    private let work = BlockingWork(label: "volume-reaper.reconcile")
    let triggers: AsyncStream<ReconcileTrigger>
    private let triggerContinuation: AsyncStream<ReconcileTrigger>.Continuation

    init(
        configuration: AgentConfiguration, policy: Policy, dryRun: Bool, store: AccessStore, pods: any PodSource,
        session: Int64, watcher: VolumeWatcher, metrics: AgentMetricsRecorder, notifier: SystemdNotifier, logger: Logger,
        clusterEvents: EventRecorder? = nil
    ) {
        self.configuration = configuration
        alwaysDryRun = dryRun
        self.session = session
        self.metrics = metrics
        self.notifier = notifier
        self.logger = logger
        let dryRun = dryRun || configuration.dryRun
        cycle = DaemonCycle(
            configuration: configuration, policy: policy, dryRun: dryRun, pods: pods, podCgroups: configuration.podCgroups(),
            pressureGauge: DiskPressureGauge(kubeletRoot: configuration.kubeletRoot, kubeletConfig: configuration.kubeletConfig),
            scanCache: ScanCacheFeed(
                fullScanInterval: configuration.fullScanInterval, watcher: watcher, watchReads: configuration.watchReads, logger: logger
            ),
            accesses: AccessLedger(store: store, watcher: watcher, logger: logger),
            repeatedOutcomes: RepeatedOutcomes(), logger: logger
        )
        var observers: [any CycleObserver] = [metrics]
        if let path = configuration.metricsTextfile {
            observers.append(TextfileObserver(textfile: MetricsTextfile(path: path, metrics: metrics), logger: logger))
        }
        observers += [CycleJournal(logger: logger), CycleStatusNotifier(notifier: notifier)] as [any CycleObserver]
        if let clusterEvents { observers.append(ClusterEventsObserver(recorder: clusterEvents)) }
        self.observers = observers
        state = Mutex(State(policy: policy, dryRun: dryRun))
        pods.setAnnotationKeysRead(policy.annotationKeysRead)
        AgentMode.set(dryRun: dryRun)
        metrics.recordDryRun(dryRun)
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
    public var dryRun: Bool { state.withLock { $0.dryRun } }
    var pods: any PodSource { cycle.pods }
    var watcher: VolumeWatcher { cycle.accesses.watcher }
    var store: AccessStore { cycle.accesses.store }
    var podCgroups: PodCgroups { cycle.podCgroups }
    var accesses: AccessLedger { cycle.accesses }

    // MARK: The trigger queue

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
    func pressureWantsCycle() async -> Bool {
        let (policy, plan, dryRun) = state.withLock { ($0.policy, $0.plan, $0.dryRun) }
        let reapedUnderPressure = !dryRun && (plan?.pressureFilesystems.contains { $0.pressureReaps > 0 } ?? false)
        return await cycle.pressureGauge.wantsCycle(lastPlanReapedUnderPressure: reapedUnderPressure, policy: policy)
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

    /// Closes the trigger queue (stopping, or cancelled) and answers every
    /// waiting request with `CancellationError` (503 `shutting-down`): none
    /// may wait for a cycle that will not run.
    func closeTriggers() {
        let waiting = state.withLock { state in
            state.closed = true
            defer { state.waiting = [] }
            return state.waiting
        }
        triggerContinuation.finish()
        for continuation in waiting { continuation.resume(throwing: CancellationError()) }
    }

    // MARK: AgentAPIProvider

    public func currentPlan() async -> Plan? { state.withLock { $0.plan } }

    public func health() async -> AgentHealth {
        let snapshot = state.withLock { $0 }
        let now = Date()
        var inputs = AgentProbes.Inputs(
            now: now, startedAt: snapshot.startedAt, ready: snapshot.ready, stopping: snapshot.stopping,
            cycleStartedAt: snapshot.cycleStartedAt, lastCycleEnded: snapshot.lastCycleEnded, lastReconcile: snapshot.lastReconcile,
            lastReconcileError: snapshot.lastReconcileError, hasPlan: snapshot.plan != nil, podSource: pods.status(),
            stuckBound: configuration.stuckBound, reconcileInterval: configuration.reconcileInterval,
            watchdog: notifier.watchdogInterval.map { (interval: $0.timeInterval, fed: isLive(limit: $0)) }
        )
        inputs.watches = watcher.status.watches
        inputs.volumes = snapshot.plan?.volumes.count ?? 0
        inputs.dryRun = snapshot.dryRun
        if let plan = snapshot.plan {
            inputs.pressure = PressureStatus(plan: plan, secondsInPressure: cycle.pressureGauge.status(now: now).secondsInPressure)
        }
        inputs.liveness = podCgroups.treeStatus.map { status in
            LivenessStatus(
                state: status.unreadable != nil ? "unreadable" : status.found ? "found" : "missing",
                trees: status.trees, problem: status.unreadable ?? status.problem
            )
        }
        if let seconds = snapshot.lastCycleSeconds {
            let scans = cycle.scanCache.lastCycle
            inputs.scans = ScanStatus(
                walked: scans.last.walked, reused: scans.last.reused, fullWalk: scans.last.fullWalk,
                lastFullWalk: scans.lastFullWalk, lastCycleSeconds: seconds
            )
        }
        return AgentProbes.health(inputs)
    }

    /// Waits for the next cycle's plan; refused at once (503) while the
    /// running cycle is past the stuck bound, since a queued request would
    /// wait as long as it does, and while the agent stops.
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
            let queued = state.withLock { state in
                guard !state.closed else { return false }
                state.waiting.append(continuation)
                return true
            }
            guard queued else { return continuation.resume(throwing: CancellationError()) }
            triggerContinuation.yield(.request)
        }
    }

    // MARK: Cycles

    /// Moves what the watcher saw into the store (coalesced writes).
    func flushAccesses() async {
        let accesses = accesses
        _ = await work.run { accesses.flush() }
    }

    /// The clean stop, recorded in the store (the next start's gap check reads it).
    func endSession() async {
        let store = store
        let session = session
        try? await work.run { try store.endSession(session, at: Date()) }
    }

    func heartbeat() async {
        let store = store
        let session = session
        try? await work.run { try store.heartbeat(session: session, at: Date()) }
    }

    /// A request's cycle: every request waiting now gets its plan or its
    /// error. Nothing to do when an earlier cycle already answered them.
    func answerRequests() async {
        let waiting = state.withLock { state in
            defer { state.waiting = [] }
            return state.waiting
        }
        guard !waiting.isEmpty else { return }
        do {
            let plan = try await reconcile(trigger: "api")
            for continuation in waiting { continuation.resume(returning: plan) }
        } catch {
            for continuation in waiting { continuation.resume(throwing: error) }
        }
    }

    /// One reconcile (and, unless a dry run, reap) cycle, observed as it ends.
    @discardableResult
    func reconcile(trigger: String) async throws -> Plan {
        var cycle = cycle
        let lastReap: Date? = state.withLock { state in
            state.cycleStartedAt = Date()
            (cycle.policy, cycle.dryRun) = (state.policy, state.dryRun)
            return state.lastReap
        }
        let observers = observers, run = cycle
        let outcome = await work.run {
            let outcome = run.run(trigger: trigger, lastReap: lastReap)
            for observer in observers { observer.cycleEnded(outcome) }
            return outcome
        }
        return try state.withLock { state in
            state.cycleStartedAt = nil
            state.lastCycleEnded = outcome.finishedAt
            switch outcome.result {
            case .planned(let planned):
                state.plan = planned.served
                state.lastReconcile = outcome.finishedAt
                state.lastReconcileError = nil
                state.lastCycleSeconds = outcome.seconds
                state.lastReap = outcome.lastReap
                return planned.served
            case .failed(let error):
                state.lastReconcileError = error
                throw CycleFailed(description: error)
            }
        }
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
    func reloadMode() async {
        guard let file = configuration.file else { return }
        var next: Bool
        do {
            next = try await work.run { try AgentConfiguration.load(path: file).dryRun }
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
    func reloadPolicy() async {
        let explicitPath = configuration.policy
        do {
            let (policy, source) = try await work.run { try PolicyLoader.resolveDefault(explicitPath: explicitPath) }
            state.withLock { $0.policy = policy }
            // Before the reload's cycle: a change of a newly read annotation wakes the next.
            pods.setAnnotationKeysRead(policy.annotationKeysRead)
            logger.notice("policy reloaded", metadata: ["policy": "\(source)"])
        } catch {
            logger.error("policy reload failed; keeping the previous policy", metadata: ["error": "\(error)"])
        }
    }
}
