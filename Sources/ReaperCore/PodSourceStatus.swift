import Foundation

/// What `/healthz`, `status` and the metrics show about the pod source.
public struct PodSourceStatus: Sendable, Hashable, Codable {
    /// The source keeps up: `synced`; it has never listed or is listing again:
    /// `syncing`; its last request failed: `failing`.
    public enum State: String, Sendable, Hashable, Codable {
        case synced, syncing, failing
    }

    public var kind: PodSourceKind
    public var endpoint: String
    public var state: State
    /// The current problem, one line; nil while the source is fine.
    public var problem: String?
    /// The kind of the current problem, e.g. `unauthorized`, `unreachable`.
    public var problemKind: String?
    /// Since when the source has been in `state`.
    public var since: Date?
    public var refreshedAt: Date?
    public var resourceVersion: String?
    public var pods: Int
    /// Requests and events so far: LISTs (or kubelet polls), watches, events.
    public var lists: Int
    public var watches: Int
    public var events: Int
    /// Failures so far, by kind of problem.
    public var failures: [String: Int]

    public init(kind: PodSourceKind, endpoint: String, state: State) {
        self.kind = kind
        self.endpoint = endpoint
        self.state = state
        pods = 0
        lists = 0
        watches = 0
        events = 0
        failures = [:]
    }
}
