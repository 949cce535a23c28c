import Foundation
import ReaperCore
import SocketAPI

/// Liveness and readiness, split as kube-apiserver splits `/livez` and
/// `/readyz` (issue 19). Liveness is only what a restart can fix: the process
/// answers and its cycles go on. Readiness adds what a restart cannot fix and
/// would make worse (an unreachable API server: every agent of the fleet
/// restarting at once and re-LISTing), so a failing pod source shows here,
/// in `volume_reaper_pod_source_synced` and in an alert, never in a restart.
struct AgentProbes {
    /// What the controller knew when asked.
    struct Inputs {
        var now: Date
        /// When the controller was made (the daemon's start).
        var startedAt: Date
        var ready: Bool
        var stopping: Bool
        var cycleStartedAt: Date?
        /// When the last cycle ended, failed or not.
        var lastCycleEnded: Date?
        var lastReconcile: Date?
        var lastReconcileError: String?
        var hasPlan: Bool
        var podSource: PodSourceStatus
        /// `reconcileStuckAfter` (or its default), seconds.
        var stuckBound: TimeInterval
        var reconcileInterval: TimeInterval
        /// systemd's watchdog interval, when it set one, and whether it would be fed now.
        var watchdog: (interval: TimeInterval, fed: Bool)?
        // For `/healthz` and `status` only.
        var watches = 0
        var volumes = 0
        var dryRun = false
        var pressure: PressureStatus?
        var liveness: LivenessStatus?
        var scans: ScanStatus?
    }

    /// `/healthz` and `status`: healthy when ready, not stopping, no cycle
    /// stuck, the last cycle successful within three intervals, and a network
    /// pod source not failing (it keeps every orphan: the agent works, but
    /// not as configured; the files source's problems are in the plan).
    static func health(_ inputs: Inputs) -> AgentHealth {
        let stuck = inputs.cycleStartedAt.map { inputs.now.timeIntervalSince($0) > inputs.stuckBound } ?? false
        let fresh = inputs.lastReconcile.map { inputs.now.timeIntervalSince($0) < max(3 * inputs.reconcileInterval, 30) } ?? false
        let podSourceFailing = inputs.podSource.kind != .files && inputs.podSource.state == .failing
        let healthy = inputs.ready && !inputs.stopping && !stuck && fresh && inputs.lastReconcileError == nil && !podSourceFailing
        let state = inputs.stopping ? "stopping"
            : stuck ? "stuck"
            : !inputs.ready || inputs.lastReconcile == nil && inputs.lastReconcileError == nil ? "starting"
            : healthy ? "running" : "degraded"
        var health = AgentHealth(
            healthy: healthy, state: state, watches: inputs.watches, volumes: inputs.volumes,
            lastReconcile: inputs.lastReconcile, lastReconcileError: inputs.lastReconcileError,
            reconcileRunningSince: inputs.cycleStartedAt, dryRun: inputs.dryRun, podSource: inputs.podSource
        )
        let live = live(inputs)
        health.live = live
        health.ready = ready(inputs, live: live)
        health.pressure = inputs.pressure
        health.liveness = inputs.liveness
        health.scans = inputs.scans
        return health
    }

    /// `/livez`: no cycle stuck past `reconcileStuckAfter`, cycles still
    /// ending (the reconcile loop is not wedged between them), started within
    /// that bound, and the systemd watchdog (when there is one) fed. The pod
    /// source is not asked.
    static func live(_ inputs: Inputs) -> ProbeResult {
        let bound = inputs.stuckBound
        var checks = [ProbeCheck("process", ok: true)]
        if !inputs.ready {
            // The watcher's first crawl of a large node takes a while; one
            // that never ends (a hung mount) must end in a restart.
            let waited = inputs.now.timeIntervalSince(inputs.startedAt)
            checks.append(ProbeCheck(
                "started", ok: inputs.stopping || waited <= bound,
                message: "not ready \(DurationText.format(waited)) after start (the bound is reconcileStuckAfter, \(DurationText.format(bound)))"
            ))
        }
        if let started = inputs.cycleStartedAt {
            let running = inputs.now.timeIntervalSince(started)
            checks.append(ProbeCheck(
                "reconcile-not-stuck", ok: running <= bound,
                message: "a reconcile has been running for \(DurationText.format(running)) (stuck after \(DurationText.format(bound)))"
            ))
        } else if inputs.ready, !inputs.stopping {
            // Between cycles the timer starts one every reconcileInterval: a
            // loop that started none for a whole bound more is wedged.
            let since = inputs.lastCycleEnded ?? inputs.startedAt
            let quiet = inputs.now.timeIntervalSince(since)
            let allowed = bound + inputs.reconcileInterval
            checks.append(ProbeCheck(
                "reconcile-loop", ok: quiet <= allowed,
                message: "no reconcile for \(DurationText.format(quiet)) (one is due every \(DurationText.format(inputs.reconcileInterval)))"
            ))
        }
        if let watchdog = inputs.watchdog {
            checks.append(ProbeCheck(
                "watchdog", ok: watchdog.fed || inputs.stopping,
                message: "the systemd watchdog (\(DurationText.format(watchdog.interval))) is not fed: a cycle runs past it or the agent is not ready"
            ))
        }
        return ProbeResult(checks: checks)
    }

    /// `/readyz`: alive, started, not stopping, the last cycle fresh and
    /// successful, and a synced pod view (the files source vouches for its
    /// view in the plan, so only the network sources are asked).
    static func ready(_ inputs: Inputs, live: ProbeResult) -> ProbeResult {
        // Liveness as one check: a stuck agent is not ready either.
        var checks = [ProbeCheck("live", ok: live.ok, message: live.failures)]
        checks.append(ProbeCheck(
            "first-plan", ok: inputs.ready && inputs.hasPlan,
            message: inputs.ready ? "the first reconcile has not finished" : "the watcher or the socket is not ready"
        ))
        checks.append(ProbeCheck("not-stopping", ok: !inputs.stopping, message: "the agent is stopping"))
        let freshBound = max(3 * inputs.reconcileInterval, 30)
        if let error = inputs.lastReconcileError {
            checks.append(ProbeCheck("reconcile", ok: false, message: "the last reconcile failed: \(error)"))
        } else if let last = inputs.lastReconcile {
            let age = inputs.now.timeIntervalSince(last)
            checks.append(ProbeCheck(
                "reconcile", ok: age < freshBound,
                message: "the last reconcile ended \(DurationText.format(age)) ago (fresh for \(DurationText.format(freshBound)))"
            ))
        }
        let source = inputs.podSource
        if source.kind != .files {
            var why = "pods from \(source.kind.rawValue) \(source.state.rawValue)"
            if let problem = source.problem { why += ": \(problem)" }
            checks.append(ProbeCheck("pod-source-synced", ok: source.state == .synced, message: why))
        }
        return ProbeResult(checks: checks)
    }
}

extension Duration {
    /// In seconds, for comparing with `Date` intervals.
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
