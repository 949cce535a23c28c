import Foundation
import Prometheus
import ReaperCore

/// The agent's Prometheus series (issue 5: `volume_reaper_*`). The server only
/// serves the registry; the daemon records into it through `AgentMetricsRecorder`.
public enum AgentMetrics {
    /// Gauge, always 1, label `version`: which release runs (`VERSION`).
    public static let info = "volume_reaper_info"
    /// Gauge, label `state` = `idle` (verdict reap) or `active` (keep).
    public static let volumes = "volume_reaper_volumes"
    /// Gauge: live inotify watches.
    public static let watches = "volume_reaper_watches"
    /// Counter: inotify events read.
    public static let events = "volume_reaper_events_total"
    /// Counter: inotify queue overflows (each forces a rescan).
    public static let overflows = "volume_reaper_overflows_total"
    /// Counter: volumes reaped.
    public static let reaps = "volume_reaper_reaps_total"
    /// Counter: bytes the reaps freed.
    public static let bytesFreed = "volume_reaper_bytes_freed_total"
    /// Histogram: how long reconcile cycles take.
    public static let reconcileDuration = "volume_reaper_reconcile_duration_seconds"
    /// Gauge: Unix time of the last finished reconcile.
    public static let lastReconcileTimestamp = "volume_reaper_last_reconcile_timestamp_seconds"
    /// Gauge: volumes the last cycle walked.
    public static let volumesWalked = "volume_reaper_cycle_volumes_walked"
    /// Gauge: volumes the last cycle took from the scan cache.
    public static let volumesReused = "volume_reaper_cycle_volumes_reused"
    /// Counter: volume walks of reconcile cycles (not the reaper's last checks).
    public static let volumeWalks = "volume_reaper_volume_walks_total"
    /// Gauge: Unix time of the last full walk (every volume).
    public static let lastFullWalkTimestamp = "volume_reaper_last_full_walk_timestamp_seconds"
    /// Gauge: bytes the current plan would free now (verdict reap).
    public static let reclaimableBytes = "volume_reaper_reclaimable_bytes"
    /// Gauge, label `reason`: bytes of kept volumes by reason (a volume kept
    /// for several reasons counts under each).
    public static let keptBytes = "volume_reaper_kept_bytes"
    /// Gauge: idle seconds of the most idle volume the plan would reap (0: none).
    public static let oldestIdleSeconds = "volume_reaper_oldest_idle_volume_seconds"
    /// Gauge: the plan's pod view age, its time less `manifests.refreshedAt` (never refreshed: its seconds since 1970).
    public static let podViewAge = "volume_reaper_pod_view_age_seconds"
    /// Gauge, label `code`: 1 while the current plan carries that alert (`limit-orphan-fraction`).
    public static let planAlerts = "volume_reaper_plan_alerts"
    /// Gauge: volumes polled for mtimes because inotify refused their watches.
    public static let polledVolumes = "volume_reaper_polled_volumes"
    /// Counter: reconcile cycles that failed (nothing deleted in them).
    public static let reconcileErrors = "volume_reaper_reconcile_errors_total"
    /// Gauge: 1 while the kubelet's pod cgroup tree is found, else 0 (every orphan kept, `liveness-unknown`).
    public static let podLivenessTreeFound = "volume_reaper_pod_liveness_tree_found"
    /// Gauge: 1 while the last reconcile failed, else 0.
    public static let lastReconcileFailed = "volume_reaper_last_reconcile_failed"
    /// Counter, label `code`: HTTP responses of the socket API (the server records these).
    public static let httpRequests = "volume_reaper_http_requests_total"
    /// Gauge: 1 in observe mode (`run --plan` or `dryRun: true`: nothing is deleted), else 0.
    public static let dryRun = "volume_reaper_dry_run"

    /// Gauge: 1 while the pod source is synced, else 0.
    public static let podSourceSynced = "volume_reaper_pod_source_synced"
    /// Gauge: pods in the source's view.
    public static let podSourcePods = "volume_reaper_pod_source_pods"
    /// Gauge: Unix time the source last vouched for its whole view.
    public static let podSourceRefreshed = "volume_reaper_pod_source_refreshed_timestamp_seconds"
    /// Counter, label `problem`: failed pod source requests by kind (`unauthorized`, `unreachable`, ...).
    public static let podSourceFailures = "volume_reaper_pod_source_failures_total"
    /// Counter, label `result` = `sent`, `dropped` (queue full) or `failed`:
    /// Kubernetes Events (`podSource.events`).
    public static let clusterEvents = "volume_reaper_kubernetes_events_total"
    /// Counter: watch events (and bookmarks) received.
    public static let podSourceEvents = "volume_reaper_pod_source_events_total"
    /// Counter: LISTs (kubelet: polls) answered.
    public static let podSourceLists = "volume_reaper_pod_source_lists_total"

    /// Gauge: 1 while a filesystem holding volumes is in disk pressure (pressure mode).
    public static let pressure = "volume_reaper_disk_pressure"
    /// Gauge, label `filesystem` (its mount point): free bytes of each
    /// filesystem other than the kubelet root's that holds volume directories.
    public static let otherFilesystemFreeBytes = "volume_reaper_other_filesystem_free_bytes"
    /// Gauge, label `filesystem`: 1 while that filesystem is in disk pressure.
    public static let otherFilesystemPressure = "volume_reaper_other_filesystem_disk_pressure"
    /// Gauge: 1 while in pressure with nothing left to reap.
    public static let pressureNothingToReap = "volume_reaper_disk_pressure_nothing_to_reap"
    /// Gauge: free bytes and inodes of the kubelet filesystem.
    public static let freeBytes = "volume_reaper_filesystem_free_bytes"
    public static let freeInodes = "volume_reaper_filesystem_free_inodes"
    /// Gauge: free bytes below which pressure begins.
    public static let pressureThresholdBytes = "volume_reaper_disk_pressure_threshold_bytes"
    /// Gauge: total seconds spent in pressure since the daemon started.
    public static let pressureSeconds = "volume_reaper_disk_pressure_seconds"
    /// Gauge, label `within` = `1h`, `6h`: bytes reclaimable now plus what
    /// becomes reclaimable within the hour or six if untouched (the forecast;
    /// `reclaimableBytes` is now).
    public static let reclaimableWithinBytes = "volume_reaper_reclaimable_within_bytes"

    /// Buckets of `reconcileDuration`.
    public static let reconcileDurationBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120),
    ]
}

/// Records the agent's metrics straight into a `PrometheusCollectorRegistry`
/// (no global `MetricsSystem` bootstrap needed). Cheap to copy; all copies
/// share one registry and one set of series.
public struct AgentMetricsRecorder: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// The `process_*` series, refreshed at each scrape.
    public let process: ProcessMetrics

    private let idleVolumes: Gauge
    private let activeVolumes: Gauge
    private let watches: Gauge
    private let events: Counter
    private let overflows: Counter
    private let reaps: Counter
    private let bytesFreed: Counter
    private let reconcileDuration: DurationHistogram
    private let lastReconcile: Gauge
    private let volumesWalked: Gauge
    private let volumesReused: Gauge
    private let volumeWalks: Counter
    private let lastFullWalk: Gauge
    private let reclaimableBytes: Gauge
    private let oldestIdle: Gauge
    private let podViewAge: Gauge
    private let orphanFractionAlert: Gauge
    private let polledVolumes: Gauge
    private let reconcileErrors: Counter
    private let lastReconcileFailed: Gauge
    private let livenessTreeFound: Gauge
    private let dryRun: Gauge
    /// The `reason` labels of `keptBytes` set by the last plan, to zero those that went.
    private let keptReasons = Synchronized(Set<Reason>())
    /// The `filesystem` labels of the other filesystems' series, to drop those that went.
    private let otherFilesystems = Synchronized(Set<String>())
    /// The watcher totals last seen, to advance the counters by the difference.
    private let watcherTotals = Synchronized((events: UInt64(0), overflows: UInt64(0)))
    /// Run before each exposition: series whose truth changes between
    /// cycles (the pod source's state) are read at the scrape.
    private let scrapeHooks = Synchronized<[@Sendable () -> Void]>([])
    /// The pod source's totals last seen, likewise.
    private let podSourceTotals = Synchronized(PodSourceStatus(kind: .files, endpoint: "", state: .syncing))
    private let clusterEventTotals = Synchronized([String: Int]())

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        func name(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
        registry.makeGauge(
            descriptor: name(AgentMetrics.info, "The running volume-reaper release; always 1."),
            labels: [("version", VolumeReaperVersion.current)]
        ).set(Int64(1))
        let volumes = name(AgentMetrics.volumes, "Volumes in the current plan, by state: idle (reap) or active (keep).")
        idleVolumes = registry.makeGauge(descriptor: volumes, labels: [("state", "idle")])
        activeVolumes = registry.makeGauge(descriptor: volumes, labels: [("state", "active")])
        watches = registry.makeGauge(descriptor: name(AgentMetrics.watches, "Live inotify watches."))
        events = registry.makeCounter(descriptor: name(AgentMetrics.events, "inotify events read."))
        overflows = registry.makeCounter(descriptor: name(AgentMetrics.overflows, "inotify queue overflows."))
        reaps = registry.makeCounter(descriptor: name(AgentMetrics.reaps, "Volumes reaped."))
        bytesFreed = registry.makeCounter(descriptor: name(AgentMetrics.bytesFreed, "Bytes freed by reaping."))
        reconcileDuration = registry.makeDurationHistogram(
            descriptor: name(AgentMetrics.reconcileDuration, "Duration of reconcile cycles."),
            buckets: AgentMetrics.reconcileDurationBuckets
        )
        lastReconcile = registry.makeGauge(
            descriptor: name(AgentMetrics.lastReconcileTimestamp, "Unix time of the last finished reconcile.")
        )
        volumesWalked = registry.makeGauge(descriptor: name(AgentMetrics.volumesWalked, "Volumes the last reconcile walked."))
        volumesReused = registry.makeGauge(
            descriptor: name(AgentMetrics.volumesReused, "Volumes the last reconcile took from the scan cache.")
        )
        volumeWalks = registry.makeCounter(descriptor: name(AgentMetrics.volumeWalks, "Volume walks of reconcile cycles."))
        lastFullWalk = registry.makeGauge(
            descriptor: name(AgentMetrics.lastFullWalkTimestamp, "Unix time of the last walk of every volume.")
        )
        reclaimableBytes = registry.makeGauge(
            descriptor: name(AgentMetrics.reclaimableBytes, "Bytes the current plan would free now (verdict reap).")
        )
        oldestIdle = registry.makeGauge(
            descriptor: name(AgentMetrics.oldestIdleSeconds, "Idle seconds of the most idle volume the current plan would reap (0: none).")
        )
        podViewAge = registry.makeGauge(
            descriptor: name(AgentMetrics.podViewAge, "Age of the pod view the current plan judged by (never refreshed: since 1970).")
        )
        orphanFractionAlert = registry.makeGauge(
            descriptor: name(AgentMetrics.planAlerts, "1 while the current plan carries the alert, by code."),
            labels: [("code", Reason.limitOrphanFraction.rawValue)]
        )
        polledVolumes = registry.makeGauge(
            descriptor: name(AgentMetrics.polledVolumes, "Volumes polled for mtimes because inotify refused their watches.")
        )
        reconcileErrors = registry.makeCounter(descriptor: name(AgentMetrics.reconcileErrors, "Reconcile cycles that failed."))
        lastReconcileFailed = registry.makeGauge(
            descriptor: name(AgentMetrics.lastReconcileFailed, "1 while the last reconcile failed, else 0.")
        )
        livenessTreeFound = registry.makeGauge(
            descriptor: name(AgentMetrics.podLivenessTreeFound, "1 while the kubelet's pod cgroup tree is found, else 0 (orphans kept).")
        )
        dryRun = registry.makeGauge(
            descriptor: name(AgentMetrics.dryRun, "1 in observe mode (nothing is deleted), 0 when the agent reaps.")
        )
        process = ProcessMetrics(registry: registry)
    }

    /// Whether the last cycle found the kubelet's pod cgroup tree.
    public func recordLivenessTree(found: Bool) {
        livenessTreeFound.set(Int64(found ? 1 : 0))
    }

    /// The mode: observe (true) or reap; set at start and at each reload.
    public func recordDryRun(_ on: Bool) {
        dryRun.set(Int64(on ? 1 : 0))
    }

    /// The exposition as of now: the `process_*` series and what the
    /// `onScrape` hooks record refreshed first.
    public func emit(into bytes: inout [UInt8]) {
        process.refresh()
        for hook in scrapeHooks.withLock({ $0 }) { hook() }
        registry.emit(into: &bytes)
    }

    /// Runs `hook` before each exposition (`/metrics`, the textfile). Hooks
    /// live as long as the recorder (the daemon's life); each must be cheap
    /// and never block.
    public func onScrape(_ hook: @escaping @Sendable () -> Void) {
        scrapeHooks.withLock { $0.append(hook) }
    }

    /// One cycle's use of the scan cache.
    public func recordScans(walked: Int, reused: Int, lastFullWalk: Date?) {
        volumesWalked.set(Int64(walked))
        volumesReused.set(Int64(reused))
        if walked > 0 { volumeWalks.increment(by: Int64(walked)) }
        if let lastFullWalk { self.lastFullWalk.set(lastFullWalk.timeIntervalSince1970) }
    }

    /// Volumes by state, reclaimable and kept bytes, the oldest idle volume,
    /// the pod view's age and the alerts, from `plan`.
    public func recordPlan(_ plan: Plan) {
        idleVolumes.set(Int64(plan.summary.reap))
        activeVolumes.set(Int64(plan.summary.keep))
        reclaimableBytes.set(Double(plan.summary.bytes))
        oldestIdle.set(Int64(plan.reaps.map(\.idleSeconds).max() ?? 0))
        // Never refreshed counts as refreshed at the epoch: huge, finite, and
        // what `time() - refreshed_timestamp` would say.
        let refreshed = plan.manifests.refreshedAt ?? Date(timeIntervalSince1970: 0)
        podViewAge.set(max(0, plan.generatedAt.timeIntervalSince(refreshed)))
        orphanFractionAlert.set(Int64(plan.alerts.contains { $0.code == .limitOrphanFraction } ? 1 : 0))
        // Every code an alert can carry, 0 when absent, so an alert that
        // clears stops firing.
        for code in Plan.alertCodes where code != .limitOrphanFraction {
            let on = plan.alerts.contains { $0.code == code }
            registry.makeGauge(descriptor: Self.planAlertsName, labels: [("code", code.rawValue)]).set(Int64(on ? 1 : 0))
        }
        var kept: [Reason: UInt64] = [:]
        for volume in plan.volumes where volume.verdict == .keep {
            for reason in Set(volume.reasons) { kept[reason, default: 0] += volume.bytes }
        }
        let gone = keptReasons.withLock { reasons in
            defer { reasons = Set(kept.keys) }
            return reasons.subtracting(kept.keys)
        }
        for reason in gone { keptBytesGauge(reason).set(Int64(0)) }
        for (reason, bytes) in kept { keptBytesGauge(reason).set(Double(bytes)) }
    }

    private static var planAlertsName: MetricNameDescriptor {
        MetricNameDescriptor(metricName: AgentMetrics.planAlerts, unitName: "", helpText: "1 while the current plan carries the alert, by code.")
    }

    private func keptBytesGauge(_ reason: Reason) -> Gauge {
        registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: AgentMetrics.keptBytes, unitName: "",
                helpText: "Bytes of kept volumes by reason (a volume kept for several reasons counts under each)."
            ),
            labels: [("reason", reason.rawValue)]
        )
    }

    /// A failed reconcile (true) or a finished one (false).
    public func recordReconcileFailure(_ failed: Bool) {
        lastReconcileFailed.set(Int64(failed ? 1 : 0))
        if failed { reconcileErrors.increment() }
    }

    /// The watcher's state: `watches` now, and `events` and `overflows` as
    /// its totals since it started (the counters advance by the difference;
    /// totals that went down, a restarted watcher, count from zero again).
    /// Keep one recorder per registry calling this, or they double count.
    public func recordWatcher(watches: Int, events: UInt64, overflows: UInt64, polledVolumes: Int = 0) {
        self.watches.set(Int64(watches))
        self.polledVolumes.set(Int64(polledVolumes))
        let (newEvents, newOverflows) = watcherTotals.withLock { last in
            let delta = (events >= last.events ? events - last.events : events,
                         overflows >= last.overflows ? overflows - last.overflows : overflows)
            last = (events, overflows)
            return delta
        }
        if newEvents > 0 { self.events.increment(by: Int64(clamping: newEvents)) }
        if newOverflows > 0 { self.overflows.increment(by: Int64(clamping: newOverflows)) }
    }

    /// One cycle's reaps: `count` volumes, `bytes` freed.
    public func recordReaps(count: Int, bytes: UInt64) {
        if count > 0 { reaps.increment(by: Int64(count)) }
        if bytes > 0 { bytesFreed.increment(by: Int64(clamping: bytes)) }
    }

    /// A finished reconcile: how long it took and when it finished.
    public func recordReconcile(duration: Duration, at date: Date) {
        reconcileDuration.record(duration)
        lastReconcile.set(date.timeIntervalSince1970)
    }

    /// The pod source's state; its totals advance the counters by the difference.
    public func recordPodSource(_ status: PodSourceStatus) {
        func name(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
        let source = [("source", status.kind.rawValue)]
        registry.makeGauge(descriptor: name(AgentMetrics.podSourceSynced, "1 while the pod source is synced."), labels: source)
            .set(Int64(status.state == .synced ? 1 : 0))
        registry.makeGauge(descriptor: name(AgentMetrics.podSourcePods, "Pods in the pod source's view."), labels: source)
            .set(Int64(status.pods))
        if let refreshed = status.refreshedAt {
            registry.makeGauge(
                descriptor: name(AgentMetrics.podSourceRefreshed, "Unix time the pod source last vouched for its whole view."), labels: source
            ).set(refreshed.timeIntervalSince1970)
        }
        let last = podSourceTotals.withLock { last in
            defer { last = status }
            return last
        }
        func delta(_ now: Int, _ before: Int) -> Int64 { Int64(now >= before ? now - before : now) }
        let events = delta(status.events, last.events)
        if events > 0 {
            registry.makeCounter(descriptor: name(AgentMetrics.podSourceEvents, "Pod watch events received."), labels: source).increment(by: events)
        }
        let lists = delta(status.lists, last.lists)
        if lists > 0 {
            registry.makeCounter(descriptor: name(AgentMetrics.podSourceLists, "Pod LISTs (kubelet: polls) answered."), labels: source)
                .increment(by: lists)
        }
        for (problem, count) in status.failures {
            let new = delta(count, last.failures[problem] ?? 0)
            guard new > 0 else { continue }
            registry.makeCounter(
                descriptor: name(AgentMetrics.podSourceFailures, "Failed pod source requests, by problem."),
                labels: source + [("problem", problem)]
            ).increment(by: new)
        }
    }

    /// Bytes reclaimable now and within 1h and 6h (the forecast).
    public func recordReclaimable(_ plan: Plan) {
        let descriptor = MetricNameDescriptor(
            metricName: AgentMetrics.reclaimableWithinBytes, unitName: "",
            helpText: "Bytes reclaimable within 1h/6h if nothing touches them again (volume_reaper_reclaimable_bytes: now)."
        )
        for (label, seconds) in [("1h", 3600.0), ("6h", 6 * 3600.0)] {
            registry.makeGauge(descriptor: descriptor, labels: [("within", label)])
                .set(Int64(clamping: Forecast.reclaimable(in: plan, within: seconds)))
        }
    }

    /// Pressure mode's state; nil (no pressure section) records nothing.
    public func recordPressure(_ status: PressureStatus?) {
        guard let status else { return }
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
        }
        gauge(AgentMetrics.pressure, "1 while a filesystem holding volumes is in disk pressure.").set(Int64(status.active ? 1 : 0))
        gauge(AgentMetrics.pressureNothingToReap, "1 while in disk pressure with nothing left to reap.").set(Int64(status.nothingToReap ? 1 : 0))
        gauge(AgentMetrics.freeBytes, "Free bytes of the kubelet filesystem.").set(Int64(clamping: status.filesystem.availableBytes))
        gauge(AgentMetrics.freeInodes, "Free inodes of the kubelet filesystem.").set(Int64(clamping: status.filesystem.availableInodes))
        gauge(AgentMetrics.pressureThresholdBytes, "Free bytes below which disk pressure begins.").set(Int64(clamping: status.thresholdBytes))
        gauge(AgentMetrics.pressureSeconds, "Seconds spent in disk pressure since the daemon started.").set(status.secondsInPressure)

        func labelled(_ name: String, _ help: String, _ filesystem: String) -> Gauge {
            registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: [("filesystem", filesystem)])
        }
        let freeHelp = "Free bytes of a filesystem other than the kubelet root's that holds volume directories."
        let pressureHelp = "1 while that filesystem is in disk pressure."
        let others = status.elsewhere ?? []
        let gone = otherFilesystems.withLock { labels in
            defer { labels = Set(others.map(\.filesystem.path)) }
            return labels.subtracting(others.map(\.filesystem.path))
        }
        for filesystem in gone {
            registry.unregisterGauge(labelled(AgentMetrics.otherFilesystemFreeBytes, freeHelp, filesystem))
            registry.unregisterGauge(labelled(AgentMetrics.otherFilesystemPressure, pressureHelp, filesystem))
        }
        for other in others {
            labelled(AgentMetrics.otherFilesystemFreeBytes, freeHelp, other.filesystem.path).set(Int64(clamping: other.filesystem.availableBytes))
            labelled(AgentMetrics.otherFilesystemPressure, pressureHelp, other.filesystem.path).set(Int64(other.active ? 1 : 0))
        }
    }

    /// The Kubernetes Event recorder's totals by result (`sent`, `dropped`,
    /// `failed`); the counters advance by the difference.
    public func recordClusterEvents(_ totals: [String: Int]) {
        let last = clusterEventTotals.withLock { last in
            defer { last = totals }
            return last
        }
        for (result, total) in totals {
            let counter = registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: AgentMetrics.clusterEvents, unitName: "",
                    helpText: "Kubernetes Events by result: sent, dropped (queue full) or failed (podSource.events)."
                ),
                labels: [("result", result)]
            )
            let new = total - (last[result] ?? 0)
            if new > 0 { counter.increment(by: Int64(new)) }
        }
    }

    /// One HTTP response of the socket API.
    public func recordHTTPRequest(status code: Int) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: AgentMetrics.httpRequests, unitName: "", helpText: "HTTP responses of the socket API, by status code."
            ),
            labels: [("code", String(code))]
        ).increment()
    }
}
