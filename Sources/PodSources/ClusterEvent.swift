import Foundation
import ReaperCore

/// A Kubernetes Event (`events.k8s.io/v1`) the agent reports: what
/// `kubectl describe pod` and `kubectl get events` show of a reap.
public struct ClusterEvent: Sendable, Hashable {
    public enum Severity: String, Sendable, Hashable {
        case normal = "Normal"
        case warning = "Warning"
    }

    /// What the Event is about.
    public enum Regarding: Sendable, Hashable {
        /// A pod the API server knows; `uid` nil when the directory's name is
        /// no API server UID (a static pod's config hash).
        case pod(namespace: String, name: String, uid: String?)
        /// The agent's own node (orphans, circuit breaker trips).
        case node
    }

    public var severity: Severity
    public var regarding: Regarding
    /// CamelCase, machine-readable (`VolumeReaped`).
    public var reason: String
    /// What the agent did (`Reap`, `Keep`).
    public var action: String
    /// For people: the journald MESSAGE of the same reap.
    public var note: String

    public init(_ severity: Severity, regarding: Regarding, reason: String, action: String, note: String) {
        self.severity = severity
        self.regarding = regarding
        self.reason = reason
        self.action = action
        self.note = note
    }

    /// Events with the same key within `EventRecorder.seriesWindow` are one
    /// Event with a `series` (client-go's isomorphic events: type, regarding,
    /// reason, action; the controller and instance are this agent's).
    struct SeriesKey: Hashable {
        var severity: Severity
        var regarding: Regarding
        var reason: String
        var action: String
    }

    var seriesKey: SeriesKey { SeriesKey(severity: severity, regarding: regarding, reason: reason, action: action) }
}

/// The JSON the API server takes: the Event to create, and the patch of a
/// series. Field rules of `events.k8s.io/v1` that the agent could break:
/// a name of at most 253 characters, a note of at most 1 KiB.
enum ClusterEventWire {
    static let maxNoteBytes = 1024
    static let maxNameBytes = 253

    /// `<regarding name>.<hex nanoseconds>`, as client-go names Events.
    static func name(for regarding: ClusterEvent.Regarding, at date: Date) -> String {
        let base: String
        switch regarding {
        case .pod(_, let name, _): base = name
        case .node: base = "volume-reaper-node"
        }
        let suffix = "." + String(UInt64(max(0, date.timeIntervalSince1970 * 1e9)), radix: 16)
        return String(base.prefix(maxNameBytes - suffix.count)) + suffix
    }

    /// Cluster-scoped objects' Events live in `default`, as client-go puts them.
    static func namespace(for regarding: ClusterEvent.Regarding) -> String {
        if case .pod(let namespace, _, _) = regarding { return namespace }
        return "default"
    }

    static func note(_ text: String) -> String {
        guard text.utf8.count > maxNoteBytes else { return text }
        var cut = ""
        for character in text {
            if cut.utf8.count + character.utf8.count > maxNoteBytes - 3 { break }
            cut.append(character)
        }
        return cut + "..."
    }

    static func regardingObject(_ regarding: ClusterEvent.Regarding, nodeName: String) -> [String: Any] {
        switch regarding {
        case .pod(let namespace, let name, let uid):
            var object: [String: Any] = ["apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": name]
            if let uid { object["uid"] = uid }
            return object
        case .node:
            // The kubelet's own Node references carry the name as the UID.
            return ["apiVersion": "v1", "kind": "Node", "name": nodeName, "uid": nodeName]
        }
    }

    static func series(count: Int, lastObserved: Date) -> [String: Any] {
        ["count": count, "lastObservedTime": RFC3339.formatMicroseconds(lastObserved)]
    }

    /// The Event to POST, with its series when it is recreated for one.
    static func create(
        _ event: ClusterEvent, name: String, eventTime: Date, series: (count: Int, lastObserved: Date)?,
        reportingController: String, nodeName: String
    ) -> Data {
        var object: [String: Any] = [
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": ["name": name, "namespace": namespace(for: event.regarding)],
            "eventTime": RFC3339.formatMicroseconds(eventTime),
            "reportingController": reportingController, "reportingInstance": nodeName,
            "action": event.action, "reason": event.reason, "note": note(event.note), "type": event.severity.rawValue,
            "regarding": regardingObject(event.regarding, nodeName: nodeName),
        ]
        if let series { object["series"] = Self.series(count: series.count, lastObserved: series.lastObserved) }
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }

    /// The strategic merge patch of a series, as client-go sends it.
    static func seriesPatch(count: Int, lastObserved: Date) -> Data {
        let object: [String: Any] = ["series": series(count: count, lastObserved: lastObserved)]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }
}
