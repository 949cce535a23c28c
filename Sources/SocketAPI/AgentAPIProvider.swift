import Foundation
import ReaperCore

/// What the socket API asks of the agent. The daemon implements it; the server
/// only turns its answers into HTTP.
public protocol AgentAPIProvider: Sendable {
    /// The latest plan, or nil before the first reconcile has finished.
    func currentPlan() async -> Plan?
    /// The agent's state for `GET /healthz`.
    func health() async -> AgentHealth
    /// Runs one reconcile cycle now (a dry run when the daemon runs with
    /// `--plan`) and returns its plan. Only peer uid 0 gets here.
    func reconcileNow() async throws -> Plan
}

/// The body of `GET /healthz`: 200 while `healthy`, 503 otherwise.
public struct AgentHealth: Codable, Sendable, Hashable {
    public var healthy: Bool
    /// A word for people and scripts, e.g. `starting`, `running`, `degraded`.
    public var state: String
    /// Live inotify watches.
    public var watches: Int
    /// Volumes in the current plan.
    public var volumes: Int
    public var lastReconcile: Date?
    public var lastReconcileError: String?
    /// When the reconcile now running started; null between cycles.
    public var reconcileRunningSince: Date?
    public var dryRun: Bool
    /// Where pods come from and whether that source keeps up.
    public var podSource: PodSourceStatus?
    /// What the last cycle walked and reused (issue 10); null before the first.
    public var scans: ScanStatus?
    /// Disk pressure mode (issue 11); absent without a `pressure` policy section.
    public var pressure: PressureStatus?
    /// Whether the kubelet's pod cgroup tree was found (issue 18); null before the first cycle.
    public var liveness: LivenessStatus?
    /// What `/livez` answers: the process and its cycles (issue 19). Optional
    /// so that `check` can read the `/healthz` of an older agent.
    public var live: ProbeResult?
    /// What `/readyz` answers: a synced pod view among the rest.
    public var ready: ProbeResult?

    public init(
        healthy: Bool, state: String, watches: Int, volumes: Int, lastReconcile: Date?,
        lastReconcileError: String?, reconcileRunningSince: Date? = nil, dryRun: Bool, podSource: PodSourceStatus? = nil
    ) {
        self.healthy = healthy
        self.state = state
        self.watches = watches
        self.volumes = volumes
        self.lastReconcile = lastReconcile
        self.lastReconcileError = lastReconcileError
        self.reconcileRunningSince = reconcileRunningSince
        self.dryRun = dryRun
        self.podSource = podSource
    }

    enum CodingKeys: String, CodingKey {
        case healthy, state, watches, volumes, lastReconcile, lastReconcileError, reconcileRunningSince, dryRun, podSource, scans, pressure
        case liveness, live, ready
    }

    // Explicit so that nil fields are written as null, like the plan's.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(healthy, forKey: .healthy)
        try container.encode(state, forKey: .state)
        try container.encode(watches, forKey: .watches)
        try container.encode(volumes, forKey: .volumes)
        try container.encode(lastReconcile, forKey: .lastReconcile)
        try container.encode(lastReconcileError, forKey: .lastReconcileError)
        try container.encode(reconcileRunningSince, forKey: .reconcileRunningSince)
        try container.encode(dryRun, forKey: .dryRun)
        try container.encode(podSource, forKey: .podSource)
        try container.encode(scans, forKey: .scans)
        try container.encodeIfPresent(pressure, forKey: .pressure)
        try container.encode(liveness, forKey: .liveness)
        try container.encodeIfPresent(live, forKey: .live)
        try container.encodeIfPresent(ready, forKey: .ready)
    }
}

/// The pod liveness cross-check in `GET /healthz`: where the kubelet's pod
/// cgroups were found, or why not (then every orphan is kept, `liveness-unknown`).
public struct LivenessStatus: Codable, Sendable, Hashable {
    /// `found`, `missing` (no tree: orphans kept) or `unreadable` (every pod kept).
    public var state: String
    public var trees: [String]
    public var problem: String?

    public init(state: String, trees: [String], problem: String?) {
        self.state = state
        self.trees = trees
        self.problem = problem
    }

    enum CodingKeys: String, CodingKey {
        case state, trees, problem
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(state, forKey: .state)
        try container.encode(trees, forKey: .trees)
        try container.encode(problem, forKey: .problem)
    }
}

/// The daemon's scan cache as of the last cycle, in `GET /healthz`.
public struct ScanStatus: Codable, Sendable, Hashable {
    /// Volumes walked in the last cycle.
    public var walked: Int
    /// Volumes whose earlier walk the last cycle reused.
    public var reused: Int
    /// The last cycle walked every volume.
    public var fullWalk: Bool
    /// When the last full walk started.
    public var lastFullWalk: Date?
    /// How long the last cycle took, in seconds.
    public var lastCycleSeconds: Double

    public init(walked: Int, reused: Int, fullWalk: Bool, lastFullWalk: Date?, lastCycleSeconds: Double) {
        self.walked = walked
        self.reused = reused
        self.fullWalk = fullWalk
        self.lastFullWalk = lastFullWalk
        self.lastCycleSeconds = lastCycleSeconds
    }

    enum CodingKeys: String, CodingKey {
        case walked, reused, fullWalk, lastFullWalk, lastCycleSeconds
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(walked, forKey: .walked)
        try container.encode(reused, forKey: .reused)
        try container.encode(fullWalk, forKey: .fullWalk)
        try container.encode(lastFullWalk, forKey: .lastFullWalk)
        try container.encode(lastCycleSeconds, forKey: .lastCycleSeconds)
    }
}

/// Thrown by `reconcileNow()` when no cycle can be run now; the API answers
/// 503 with `code` and `message` at once rather than leave the client waiting.
public struct ReconcileUnavailable: Error, Sendable, Hashable, CustomStringConvertible {
    /// Stable kebab-case, e.g. `reconcile-stuck`.
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// Which volumes `GET /v1/volumes?state=` lists.
public enum VolumeStateFilter: String, Sendable, Hashable, CaseIterable {
    /// Verdict `reap` now.
    case idle
    /// Verdict `keep`.
    case active
    case all

    public func includes(_ verdict: VolumeVerdict) -> Bool {
        switch self {
        case .idle: verdict.verdict == .reap
        case .active: verdict.verdict == .keep
        case .all: true
        }
    }
}

/// The body of `GET /v1/volumes` and `GET /v1/volumes/{podUID}` (the latter
/// with `podUID` set); clients decode it with `Plan.decoder()`.
public struct VolumeList: Codable, Sendable, Hashable {
    /// When the plan the volumes come from was made.
    public var generatedAt: Date
    /// The pod asked for, on `/v1/volumes/{podUID}` only.
    public var podUID: String?
    public var volumes: [VolumeVerdict]

    public init(generatedAt: Date, podUID: String? = nil, volumes: [VolumeVerdict]) {
        self.generatedAt = generatedAt
        self.podUID = podUID
        self.volumes = volumes
    }

    enum CodingKeys: String, CodingKey { case generatedAt, podUID, volumes }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(generatedAt, forKey: .generatedAt)
        try container.encodeIfPresent(podUID, forKey: .podUID)
        try container.encode(volumes, forKey: .volumes)
    }
}

/// Every error answer: `{"error": {"code": "not-found", "message": "..."}}`.
public struct APIErrorBody: Codable, Sendable, Hashable {
    public struct Detail: Codable, Sendable, Hashable {
        /// Stable kebab-case code, e.g. `not-found`, `forbidden`, `payload-too-large`.
        public var code: String
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    public var error: Detail

    public init(code: String, message: String) {
        self.error = Detail(code: code, message: message)
    }
}
