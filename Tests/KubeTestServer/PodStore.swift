import Foundation

/// A lock around a value, for state shared by the event loop and the tests.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

public struct KubeTestServerError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The API server's pods: raw JSON objects kept with all their fields, a
/// resourceVersion counter that grows with each change, and the history of
/// changes a watch replays. Not thread-safe: the server holds it under its lock.
struct PodStore {
    struct Pod {
        var object: [String: Any]
        var uid: String
        var nodeName: String?
        var namespace: String?
    }

    /// Which pods a request sees: `spec.nodeName` from the field selector, the
    /// namespace from the path (nil: any).
    struct Scope {
        var node: String?
        var namespace: String?

        func contains(node podNode: String?, namespace podNamespace: String?) -> Bool {
            (node == nil || node == podNode) && (namespace == nil || namespace == podNamespace)
        }
    }

    /// One change, with its event line encoded once.
    struct Change {
        var resourceVersion: Int
        var type: String
        var uid: String
        var nodeName: String?
        var namespace: String?
        var line: Data
    }

    private(set) var pods: [String: Pod] = [:]
    /// Insertion order, so LISTs come out in a stable order.
    private(set) var order: [String] = []
    private(set) var resourceVersion: Int
    /// Watches from a resourceVersion below this get 410 Expired.
    private(set) var oldestAvailable: Int
    private(set) var history: [Change] = []
    /// Changes kept for replay; older ones are compacted away (watches from
    /// before them get 410), as etcd compacts, and memory stays bounded in long benchmarks.
    static let historyLimit = 100_000

    init(initialResourceVersion: Int) {
        resourceVersion = initialResourceVersion
        oldestAvailable = initialResourceVersion
    }

    static func parseObject(_ data: Data) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw KubeTestServerError("pod JSON is not an object")
        }
        return object
    }

    /// The items of a PodList or List document, or a single Pod.
    static func items(ofDocument data: Data) throws -> [[String: Any]] {
        let document = try parseObject(data)
        if let items = document["items"] as? [[String: Any]] { return items }
        if document["items"] is NSNull { return [] }
        if document["metadata"] != nil { return [document] }
        throw KubeTestServerError("document is neither a Pod nor a PodList")
    }

    static func uid(of object: [String: Any]) -> String? {
        (object["metadata"] as? [String: Any])?["uid"] as? String
    }

    static func nodeName(of object: [String: Any]) -> String? {
        (object["spec"] as? [String: Any])?["nodeName"] as? String
    }

    static func namespace(of object: [String: Any]) -> String? {
        (object["metadata"] as? [String: Any])?["namespace"] as? String
    }

    /// Adds or replaces a pod (ADDED or MODIFIED).
    @discardableResult
    mutating func put(_ object: [String: Any]) throws -> Change {
        guard let uid = Self.uid(of: object) else { throw KubeTestServerError("pod has no metadata.uid") }
        let type = pods[uid] == nil ? "ADDED" : "MODIFIED"
        if pods[uid] == nil { order.append(uid) }
        return record(type: type, uid: uid, object: object)
    }

    mutating func modify(uid: String, _ change: (inout [String: Any]) throws -> Void) throws -> Change {
        guard var object = pods[uid]?.object else { throw KubeTestServerError("no pod with uid \(uid)") }
        try change(&object)
        return record(type: "MODIFIED", uid: uid, object: object)
    }

    mutating func delete(uid: String) throws -> Change {
        guard let object = pods[uid]?.object else { throw KubeTestServerError("no pod with uid \(uid)") }
        let change = record(type: "DELETED", uid: uid, object: object)
        pods[uid] = nil
        order.removeAll { $0 == uid }
        return change
    }

    /// Drops the history: watches from before now get 410.
    /// Writes to other resources: the cluster's resourceVersion (etcd's
    /// revision, shared by every resource) moves on, no pod changes.
    mutating func advance(by count: Int) {
        resourceVersion += max(0, count)
    }

    mutating func compact() {
        oldestAvailable = resourceVersion
        history.removeAll()
    }

    /// Changes after `resourceVersion`, oldest first.
    func changes(after resourceVersion: Int) -> ArraySlice<Change> {
        let start = history.firstIndex { $0.resourceVersion > resourceVersion } ?? history.endIndex
        return history[start...]
    }

    /// Current pods on `node` (all when nil) as ADDED lines, for watches that
    /// start without a resourceVersion or with sendInitialEvents.
    func currentAsAdded(_ scope: Scope) -> [Change] {
        order.compactMap { uid in
            guard let pod = pods[uid], scope.contains(node: pod.nodeName, namespace: pod.namespace) else { return nil }
            let rv = Self.resourceVersion(of: pod.object) ?? resourceVersion
            return Change(
                resourceVersion: rv, type: "ADDED", uid: uid, nodeName: pod.nodeName, namespace: pod.namespace,
                line: KubeWire.eventLine(type: "ADDED", object: Self.encodeForWatch(pod.object))
            )
        }
    }

    /// The LIST body: items without kind/apiVersion, as the apiserver writes them.
    func listBody(_ scope: Scope) -> Data {
        listBody(items: order.compactMap { pods[$0] }.filter { scope.contains(node: $0.nodeName, namespace: $0.namespace) }, metadata: [
            "resourceVersion": String(resourceVersion),
        ])
    }

    /// One page of a LIST, as the apiserver's chunking (`limit`, `continue`)
    /// writes it: `metadata.continue` and `metadata.remainingItemCount` while
    /// items remain, every page at the first page's resourceVersion. A token
    /// from before the compaction point is 410, as etcd's compaction makes it.
    enum ListOutcome {
        case page(Data)
        /// An HTTP status to answer instead (400 a bad token, 410 an expired one).
        case status(Int)
    }

    func listPage(_ scope: Scope, limit: Int?, continueToken: String?) -> ListOutcome {
        let matching = order.compactMap { pods[$0] }.filter { scope.contains(node: $0.nodeName, namespace: $0.namespace) }
        var start = 0
        var listVersion = resourceVersion
        if let continueToken {
            guard let token = ContinueToken(continueToken) else { return .status(400) }
            guard token.resourceVersion >= oldestAvailable else { return .status(410) }
            start = min(token.start, matching.count)
            listVersion = token.resourceVersion
        }
        guard let limit, start + limit < matching.count else {
            return .page(listBody(items: Array(matching[start...]), metadata: ["resourceVersion": String(listVersion)]))
        }
        let next = ContinueToken(resourceVersion: listVersion, start: start + limit)
        return .page(listBody(items: Array(matching[start..<(start + limit)]), metadata: [
            "resourceVersion": String(listVersion), "continue": next.encoded, "remainingItemCount": matching.count - start - limit,
        ]))
    }

    /// What the apiserver's continue token carries: the list's resourceVersion and where to go on (base64 JSON).
    struct ContinueToken {
        var resourceVersion: Int
        var start: Int

        init(resourceVersion: Int, start: Int) {
            self.resourceVersion = resourceVersion
            self.start = start
        }

        init?(_ encoded: String) {
            guard let data = Data(base64Encoded: encoded),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let version = object["rv"] as? Int, let start = object["start"] as? Int, start >= 0
            else { return nil }
            self.init(resourceVersion: version, start: start)
        }

        var encoded: String {
            KubeWire.encode(["v": "meta.k8s.io/v1", "rv": resourceVersion, "start": start]).base64EncodedString()
        }
    }

    private func listBody(items: [Pod], metadata: [String: Any]) -> Data {
        var body = Data(#"{"kind":"PodList","apiVersion":"v1","metadata":"#.utf8)
        body.append(KubeWire.encode(metadata, order: ["resourceVersion", "continue", "remainingItemCount"]))
        body.append(contentsOf: #","items":["#.utf8)
        for (index, pod) in items.enumerated() {
            if index > 0 { body.append(contentsOf: ",".utf8) }
            var item = pod.object
            item["kind"] = nil
            item["apiVersion"] = nil
            body.append(KubeWire.encode(item, order: ["metadata", "spec", "status"]))
        }
        body.append(contentsOf: "]}".utf8)
        return body
    }

    func object(uid: String) -> [String: Any]? { pods[uid]?.object }

    private static func resourceVersion(of object: [String: Any]) -> Int? {
        ((object["metadata"] as? [String: Any])?["resourceVersion"] as? String).flatMap { Int($0) }
    }

    /// Watch events carry kind and apiVersion.
    private static func encodeForWatch(_ object: [String: Any]) -> Data {
        var object = object
        object["kind"] = "Pod"
        object["apiVersion"] = "v1"
        return KubeWire.encode(object, order: ["kind", "apiVersion", "metadata", "spec", "status"])
    }

    private mutating func record(type: String, uid: String, object: [String: Any]) -> Change {
        resourceVersion += 1
        var object = object
        var metadata = object["metadata"] as? [String: Any] ?? [:]
        metadata["resourceVersion"] = String(resourceVersion)
        object["metadata"] = metadata
        let node = Self.nodeName(of: object), namespace = Self.namespace(of: object)
        if type != "DELETED" { pods[uid] = Pod(object: object, uid: uid, nodeName: node, namespace: namespace) }
        let change = Change(
            resourceVersion: resourceVersion, type: type, uid: uid, nodeName: node, namespace: namespace,
            line: KubeWire.eventLine(type: type, object: Self.encodeForWatch(object))
        )
        history.append(change)
        if history.count > Self.historyLimit {
            let dropped = history.count - Self.historyLimit / 2
            oldestAvailable = history[dropped - 1].resourceVersion
            history.removeFirst(dropped)
        }
        return change
    }
}

extension Dictionary where Key == String, Value == Any {
    /// Sets `status.phase`, and when `terminateContainers`, turns every
    /// container status into `terminated` (exit 0 for Succeeded, 1 otherwise),
    /// as the kubelet reports a finished pod.
    public mutating func setPodPhase(_ phase: String, terminateContainers: Bool, at time: Date = Date()) {
        var status = self["status"] as? [String: Any] ?? [:]
        status["phase"] = phase
        if terminateContainers {
            let stamp = ISO8601DateFormatter().string(from: time)
            let exitCode = phase == "Succeeded" ? 0 : 1
            let reason = phase == "Succeeded" ? "Completed" : "Error"
            if var statuses = status["containerStatuses"] as? [[String: Any]] {
                for index in statuses.indices {
                    let state = statuses[index]["state"] as? [String: Any]
                    let running = state?["running"] as? [String: Any]
                    var terminated: [String: Any] = ["exitCode": exitCode, "reason": reason, "finishedAt": stamp]
                    terminated["startedAt"] = running?["startedAt"] ?? stamp
                    if let id = statuses[index]["containerID"] { terminated["containerID"] = id }
                    statuses[index]["state"] = ["terminated": terminated]
                    statuses[index]["ready"] = false
                    statuses[index]["started"] = false
                }
                status["containerStatuses"] = statuses
            }
        }
        self["status"] = status
    }
}
