import Foundation

/// `events.k8s.io/v1` Events as the API server keeps them, for the tests of
/// the agent's Event recorder: POST creates (409 for a name taken), a
/// strategic merge PATCH of `series` updates (404 for no such Event).
struct EventStore {
    private(set) var events: [KubeTestServer.ClusterEvent] = []

    /// Answers `POST /apis/events.k8s.io/v1/namespaces/<ns>/events`.
    mutating func create(namespace: String, body: Data) -> (status: Int, body: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              let metadata = object["metadata"] as? [String: Any], let name = metadata["name"] as? String, !name.isEmpty
        else {
            return (400, KubeWire.status(code: 400, reason: "BadRequest", message: "the body is not an Event with metadata.name"))
        }
        if let inBody = metadata["namespace"] as? String, inBody != namespace {
            return (400, KubeWire.status(code: 400, reason: "BadRequest", message: "the namespace of the provided object does not match the namespace sent on the request"))
        }
        if events.contains(where: { $0.namespace == namespace && $0.name == name }) {
            return (409, KubeWire.status(code: 409, reason: "AlreadyExists", message: "events.events.k8s.io \"\(name)\" already exists"))
        }
        var event = KubeTestServer.ClusterEvent(namespace: namespace, name: name, object: object)
        event.creates = 1
        events.append(event)
        return (201, body)
    }

    /// Answers `PATCH /apis/events.k8s.io/v1/namespaces/<ns>/events/<name>`.
    mutating func patch(namespace: String, name: String, body: Data, contentType: String?) -> (status: Int, body: Data) {
        guard contentType?.hasPrefix("application/strategic-merge-patch+json") == true
                || contentType?.hasPrefix("application/merge-patch+json") == true else {
            return (415, KubeWire.status(code: 415, reason: "UnsupportedMediaType", message: "the body of the request was in an unknown format"))
        }
        guard let index = events.firstIndex(where: { $0.namespace == namespace && $0.name == name }) else {
            return (404, KubeWire.status(code: 404, reason: "NotFound", message: "events.events.k8s.io \"\(name)\" not found"))
        }
        guard let patch = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            return (400, KubeWire.status(code: 400, reason: "BadRequest", message: "the patch is not a JSON object"))
        }
        var object = events[index].object
        for (key, value) in patch { object[key] = value }
        var event = KubeTestServer.ClusterEvent(namespace: namespace, name: name, object: object)
        event.creates = events[index].creates
        event.patches = events[index].patches + 1
        events[index] = event
        return (200, (try? JSONSerialization.data(withJSONObject: object)) ?? Data())
    }
}

extension KubeTestServer {
    /// An Event as the server holds it now, with the fields the tests check.
    public struct ClusterEvent: @unchecked Sendable {
        public var namespace: String
        public var name: String
        /// The stored object (immutable once stored, hence the unchecked Sendable).
        let object: [String: Any]
        /// POSTs that made it, PATCHes since.
        public var creates = 0
        public var patches = 0

        init(namespace: String, name: String, object: [String: Any]) {
            self.namespace = namespace
            self.name = name
            self.object = object
        }

        public func string(_ field: String) -> String? { object[field] as? String }
        public var reason: String? { string("reason") }
        public var action: String? { string("action") }
        public var note: String? { string("note") }
        public var type: String? { string("type") }
        public var reportingController: String? { string("reportingController") }
        public var reportingInstance: String? { string("reportingInstance") }
        public var eventTime: String? { string("eventTime") }
        /// `regarding` as strings: apiVersion, kind, namespace, name, uid.
        public var regarding: [String: String] {
            (object["regarding"] as? [String: Any])?.compactMapValues { $0 as? String } ?? [:]
        }
        public var seriesCount: Int? { (object["series"] as? [String: Any])?["count"] as? Int }
        public var seriesLastObservedTime: String? { (object["series"] as? [String: Any])?["lastObservedTime"] as? String }
    }

    /// The Events the agent wrote, in the order they were created.
    public var clusterEvents: [ClusterEvent] { state.withLock { $0.eventStore.events } }
}
