import Foundation
import Prometheus
import SystemCalls

/// The standard `process_*` series (issue 19), named and typed as every
/// Prometheus client library exports them, so the usual dashboards and
/// alerts (memory growth, fd exhaustion, restarts) work unchanged.
/// swift-prometheus has no process collector; this reads `/proc/self` at
/// each scrape (and before each textfile write).
public struct ProcessMetrics: Sendable {
    public static let cpuSeconds = "process_cpu_seconds_total"
    public static let residentMemory = "process_resident_memory_bytes"
    public static let virtualMemory = "process_virtual_memory_bytes"
    public static let openFDs = "process_open_fds"
    public static let maxFDs = "process_max_fds"
    public static let startTime = "process_start_time_seconds"

    private let cpu: Counter
    private let resident: Gauge
    private let virtual: Gauge
    private let open: Gauge
    private let max: Gauge
    /// CPU seconds already counted: the counter advances by the difference.
    private let cpuCounted = Synchronized(0.0)

    init(registry: PrometheusCollectorRegistry) {
        func name(_ name: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
        }
        cpu = registry.makeCounter(descriptor: name(Self.cpuSeconds, "Total user and system CPU time spent in seconds."))
        resident = registry.makeGauge(descriptor: name(Self.residentMemory, "Resident memory size in bytes."))
        virtual = registry.makeGauge(descriptor: name(Self.virtualMemory, "Virtual memory size in bytes."))
        open = registry.makeGauge(descriptor: name(Self.openFDs, "Number of open file descriptors."))
        max = registry.makeGauge(descriptor: name(Self.maxFDs, "Maximum number of open file descriptors."))
        let start = registry.makeGauge(descriptor: name(Self.startTime, "Start time of the process since unix epoch in seconds."))
        // Fixed for the process's life; without /proc it stays 0 like the rest.
        if let started = try? ProcessSelf.startTime() { start.set(started) }
        refresh()
    }

    /// Reads `/proc/self` now. Cheap and never waits on a disk or the network
    /// (procfs answers from kernel memory), so the scrape's handler calls it
    /// directly. A read that fails leaves the last values.
    public func refresh() {
        guard let now = try? ProcessSelf.read() else { return }
        resident.set(Double(now.residentBytes))
        virtual.set(Double(now.virtualBytes))
        open.set(Int64(now.openFDs))
        max.set(Double(now.maxFDs))
        let delta = cpuCounted.withLock { counted in
            defer { counted = Swift.max(counted, now.cpuSeconds) }
            return now.cpuSeconds - counted
        }
        if delta > 0 { cpu.increment(by: delta) }
    }
}
