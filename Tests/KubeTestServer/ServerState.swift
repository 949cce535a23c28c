import Foundation
import NIOCore
import NIOHTTP1

/// Something a watch stream writes next (held while the server stalls).
enum WatchOutput {
    /// A line, and what to report when it is written (nil: no report).
    case line(Data, KubeTestServer.WrittenEvent?)
    case end(KubeTestServer.DropMode)
}

/// One open watch stream.
struct WatchStream {
    let channel: any Channel
    /// Tells this watch from a later one on the same connection.
    let serial: Int
    /// Only pods of this node and namespace.
    let scope: PodStore.Scope
    let bookmarks: Bool
    var lastResourceVersion: Int
    /// Non-nil while stalled: what is waiting to be written.
    var held: [WatchOutput]?
}

/// The server's mutable state, always used under the server's lock. Nothing in
/// here runs NIO pipeline operations synchronously: every write or close is
/// handed to the channel's event loop with `execute`, whose queue keeps the
/// order in which they were made under the lock (and no callback can re-enter
/// the lock).
struct ServerState {
    var store: PodStore
    var acceptedTokens: Set<String>
    var allowAnonymous: Bool
    var failures: [KubeTestServer.RequestKind: Int] = [:]
    var garbage: KubeTestServer.GarbageModes = []
    var stalled = false
    var parkedBodies: [(channel: any Channel, body: Data)] = []
    var watches: [ObjectIdentifier: WatchStream] = [:]
    var connections: [ObjectIdentifier: any Channel] = [:]
    var requests: [KubeTestServer.RecordedRequest] = []
    var kubeletDocument: Data?
    var eventStore = EventStore()
    /// LISTs answer these bytes instead of the store's list (nil: the store).
    var listAnswer: Data?
    /// LISTs are cut into pages of this size even when not asked (`limit`).
    var forcedPageSize: Int?
    /// The next this many requests with a `continue` token get 410 Expired.
    var expiringContinues = 0
    var watchMisbehavior: KubeTestServer.WatchMisbehavior = .none
    var bookmarkTask: RepeatedTask?
    var onEventWritten: (@Sendable (KubeTestServer.WrittenEvent) -> Void)?
    var stopped = false
    var nextWatchSerial = 0
    var refusingConnections = false
    var refusedConnections = 0
    var bytesSent = 0
    var watchListSupported = true
    var bookmarksBeforeTimeout = false

    init(configuration: KubeTestServer.Configuration) {
        store = PodStore(initialResourceVersion: configuration.initialResourceVersion)
        acceptedTokens = configuration.acceptedTokens
        allowAnonymous = configuration.allowAnonymous
    }

    mutating func forget(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        connections[id] = nil
        watches[id] = nil
        parkedBodies.removeAll { ObjectIdentifier($0.channel) == id }
    }

    // MARK: Events

    /// Sends a change to every watch of its node.
    mutating func publish(_ change: PodStore.Change) {
        let written = KubeTestServer.WrittenEvent(
            type: change.type, uid: change.uid, resourceVersion: change.resourceVersion, uptimeNanoseconds: 0
        )
        for (id, watch) in watches where watch.scope.contains(node: change.nodeName, namespace: change.namespace) {
            emit(.line(change.line, written), to: id)
        }
        for id in Array(watches.keys) { watches[id]?.lastResourceVersion = change.resourceVersion }
    }

    mutating func broadcastBookmark() {
        let rv = store.resourceVersion
        let line = KubeWire.eventLine(type: "BOOKMARK", object: KubeWire.bookmarkObject(resourceVersion: rv, initialEventsEnd: false))
        let written = KubeTestServer.WrittenEvent(type: "BOOKMARK", uid: nil, resourceVersion: rv, uptimeNanoseconds: 0)
        for (id, watch) in watches where watch.bookmarks { emit(.line(line, written), to: id) }
    }

    /// Writes (or holds, while stalled) one output of a watch; an end removes the watch.
    mutating func emit(_ output: WatchOutput, to id: ObjectIdentifier) {
        guard let watch = watches[id] else { return }
        if watch.held != nil {
            watches[id]?.held?.append(output)
            return
        }
        if case .line(let line, _) = output { bytesSent += line.count }
        write(output, on: watch.channel)
        if case .end = output { watches[id] = nil }
    }

    mutating func release() {
        stalled = false
        for (channel, body) in parkedBodies {
            channel.eventLoop.execute {
                channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
                channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
            }
        }
        parkedBodies.removeAll()
        for id in Array(watches.keys) {
            guard let held = watches[id]?.held else { continue }
            watches[id]?.held = nil
            for output in held { emit(output, to: id) }
        }
    }

    private func write(_ output: WatchOutput, on channel: any Channel) {
        let callback = onEventWritten
        switch output {
        case .line(let line, let event):
            channel.eventLoop.execute {
                let future = channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: line))))
                if let callback, let event {
                    future.whenSuccess {
                        var written = event
                        written.uptimeNanoseconds = DispatchTime.now().uptimeNanoseconds
                        callback(written)
                    }
                }
            }
        case .end(.endOfStream):
            channel.eventLoop.execute { channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil) }
        case .end(.atLineBoundary):
            channel.eventLoop.execute { channel.close(promise: nil) }
        case .end(.midLine):
            let half = KubeWire.eventLine(
                type: "MODIFIED",
                object: Data(#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"cut-short","namespace":"default","uid":"00000000-0000-0000-0000-000000000000","resourceVersion":"1"},"status":{"phase":"Running"}}"#.utf8)
            ).prefix(60)
            channel.eventLoop.execute {
                channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: half)))).whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
        }
    }

    // MARK: Requests

    /// Answers one request (called on the connection's event loop); returns
    /// the watch's timeout to schedule, if it has one.
    mutating func handle(
        head: HTTPRequestHead, body: Data, channel: any Channel, clientCommonName: String?
    ) -> (timeout: Int64, serial: Int)? {
        let components = URLComponents(string: head.uri)
        let path = components?.path ?? head.uri
        var query: [String: String] = [:]
        for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let isWatch = query["watch"] == "true" || query["watch"] == "1"
        var scope = PodStore.Scope(node: Self.nodeName(fromSelector: query["fieldSelector"]), namespace: nil)
        let segments = path.split(separator: "/").map(String.init)
        let kind: KubeTestServer.RequestKind
        switch (head.method, path) {
        case (.GET, "/api/v1/pods"): kind = isWatch ? .watch : .list
        case (.GET, _) where segments.count == 5 && segments[0...2] == ["api", "v1", "namespaces"] && segments[4] == "pods":
            scope.namespace = segments[3]
            kind = isWatch ? .watch : .list
        case (.GET, "/pods"), (.GET, "/pods/"): kind = .kubeletPods
        case (.POST, _) where segments.count == 6 && Self.isEventsPath(segments),
             (.PATCH, _) where segments.count == 7 && Self.isEventsPath(segments):
            kind = .events
        default: kind = .other
        }
        var token: String?
        if let authorization = head.headers.first(name: "authorization"), authorization.lowercased().hasPrefix("bearer ") {
            token = String(authorization.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        }
        var record = KubeTestServer.RecordedRequest(
            method: head.method.rawValue, path: path, query: query, kind: kind,
            clientCommonName: clientCommonName, bearerToken: token, status: 200
        )
        defer { requests.append(record) }

        // The apiserver's union authenticator: a verified client certificate,
        // else a bearer token, else anonymous (when enabled).
        let authenticated: Bool
        if clientCommonName != nil {
            authenticated = true
        } else if let token {
            authenticated = acceptedTokens.contains(token)
        } else {
            authenticated = allowAnonymous
        }
        let user = clientCommonName ?? (token != nil ? "token-user" : nil)
        let verb = kind == .watch ? "watch" : kind == .events ? (head.method == .POST ? "create" : "patch") : "list"
        if !authenticated {
            record.status = 401
            respond(channel, status: 401, body: KubeWire.statusForHTTPCode(401, user: user, verb: verb))
            return nil
        }
        if let failure = failures[kind] {
            record.status = failure
            respond(channel, status: failure, body: KubeWire.statusForHTTPCode(failure, user: user, verb: verb))
            return nil
        }
        if kind == .list || kind == .watch, let invalid = Self.invalidListOptions(query, watch: kind == .watch, watchList: watchListSupported) {
            record.status = 422
            respond(channel, status: 422, body: invalid)
            return nil
        }
        switch kind {
        case .list:
            if garbage.contains(.listBody) {
                respond(channel, status: 200, body: Data("<html><body>upstream connect error</body></html>".utf8))
            } else if let listAnswer {
                respond(channel, status: 200, body: listAnswer)
            } else {
                let limit = query["limit"].flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? forcedPageSize
                let token = query["continue"].flatMap { $0.isEmpty ? nil : $0 }
                if token != nil && expiringContinues > 0 {
                    expiringContinues -= 1
                    record.status = 410
                    respond(channel, status: 410, body: KubeWire.statusForHTTPCode(410, user: user, verb: verb))
                    return nil
                }
                switch store.listPage(scope, limit: limit, continueToken: token) {
                case .page(let body):
                    respond(channel, status: 200, body: body)
                case .status(let status):
                    record.status = status
                    respond(channel, status: status, body: KubeWire.statusForHTTPCode(status, user: user, verb: verb))
                }
            }
        case .watch:
            return startWatch(channel: channel, query: query, scope: scope)
        case .events:
            let answer = head.method == .POST
                ? eventStore.create(namespace: segments[4], body: body)
                : eventStore.patch(namespace: segments[4], name: segments[6], body: body, contentType: head.headers.first(name: "content-type"))
            record.status = answer.status
            respond(channel, status: answer.status, body: answer.body)
        case .kubeletPods:
            if garbage.contains(.kubeletBody) {
                respond(channel, status: 200, body: Data("Internal Server Error: garbage mode\n".utf8))
            } else if let kubeletDocument {
                respond(channel, status: 200, body: kubeletDocument)
            } else {
                record.status = 404
                respond(channel, status: 404, body: Data("404 page not found\n".utf8), contentType: "text/plain; charset=utf-8")
            }
        case .other:
            if head.method == .GET, let discovery = KubeWire.discovery(path: path, serverAddress: channel.localAddress) {
                respond(channel, status: 200, body: discovery)
            } else {
                record.status = 404
                respond(channel, status: 404, body: KubeWire.statusForHTTPCode(404, user: user, verb: verb))
            }
        }
        return nil
    }

    /// Starts a watch; returns its timeoutSeconds and serial when it has a timeout.
    private mutating func startWatch(
        channel: any Channel, query: [String: String], scope: PodStore.Scope
    ) -> (timeout: Int64, serial: Int)? {
        let bookmarks = query["allowWatchBookmarks"] == "true"
        let initialEvents = query["sendInitialEvents"] == "true"
        let requested = query["resourceVersion"].flatMap { Int($0) } ?? 0
        let id = ObjectIdentifier(channel)
        var responseHead = HTTPResponseHead(version: .http1_1, status: .ok)
        responseHead.headers.add(name: "Content-Type", value: "application/json")
        responseHead.headers.add(name: "Cache-Control", value: "no-cache, private")
        responseHead.headers.add(name: "Transfer-Encoding", value: "chunked")
        let head = responseHead
        bytesSent += Self.headBytes(head)
        channel.eventLoop.execute { channel.writeAndFlush(HTTPServerResponsePart.head(head), promise: nil) }
        nextWatchSerial += 1
        let serial = nextWatchSerial
        watches[id] = WatchStream(
            channel: channel, serial: serial, scope: scope, bookmarks: bookmarks, lastResourceVersion: store.resourceVersion,
            held: stalled ? [] : nil
        )
        if garbage.contains(.watchLine) {
            emit(.line(Data("this is not JSON {\n".utf8), nil), to: id)
        }
        switch watchMisbehavior {
        case .none:
            break
        case .expireAtOnce:
            let error = KubeWire.tooOldResourceVersion(requested: requested, oldest: store.resourceVersion)
            emit(.line(KubeWire.eventLine(type: "ERROR", object: error), nil), to: id)
            emit(.end(.endOfStream), to: id)
            return nil
        case .oneBookmarkThenEnd:
            let object = KubeWire.bookmarkObject(resourceVersion: store.resourceVersion, initialEventsEnd: false)
            emit(.line(KubeWire.eventLine(type: "BOOKMARK", object: object), nil), to: id)
            emit(.end(.endOfStream), to: id)
            return nil
        }
        if requested > 0 && requested < store.oldestAvailable {
            let error = KubeWire.tooOldResourceVersion(requested: requested, oldest: store.oldestAvailable)
            emit(.line(KubeWire.eventLine(type: "ERROR", object: error), nil), to: id)
            emit(.end(.endOfStream), to: id)
            return nil
        }
        let replay: [PodStore.Change]
        if requested == 0 || initialEvents {
            replay = store.currentAsAdded(scope)
        } else {
            replay = store.changes(after: requested).filter { scope.contains(node: $0.nodeName, namespace: $0.namespace) }
        }
        for change in replay {
            let event = KubeTestServer.WrittenEvent(
                type: change.type, uid: change.uid, resourceVersion: change.resourceVersion, uptimeNanoseconds: 0
            )
            emit(.line(change.line, event), to: id)
        }
        if initialEvents && bookmarks {
            let object = KubeWire.bookmarkObject(resourceVersion: store.resourceVersion, initialEventsEnd: true)
            emit(.line(KubeWire.eventLine(type: "BOOKMARK", object: object), nil), to: id)
        }
        if let timeout = query["timeoutSeconds"].flatMap({ Int64($0) }), timeout > 0 {
            return (timeout, serial)
        }
        return nil
    }

    /// The BOOKMARK the watch cache sends 2 s before a watch's deadline, if
    /// the watch `serial` is still open and allows bookmarks.
    mutating func bookmarkBeforeEnd(on channel: any Channel, serial: Int) {
        let id = ObjectIdentifier(channel)
        guard let watch = watches[id], watch.serial == serial, watch.bookmarks else { return }
        let rv = store.resourceVersion
        let line = KubeWire.eventLine(type: "BOOKMARK", object: KubeWire.bookmarkObject(resourceVersion: rv, initialEventsEnd: false))
        emit(.line(line, KubeTestServer.WrittenEvent(type: "BOOKMARK", uid: nil, resourceVersion: rv, uptimeNanoseconds: 0)), to: id)
    }

    /// The bytes of a response head on the wire (status line, headers, blank line).
    static func headBytes(_ head: HTTPResponseHead) -> Int {
        let statusLine = "HTTP/1.1 \(head.status.code) \(head.status.reasonPhrase)\r\n".utf8.count
        return statusLine + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } + 2
    }

    /// The apiserver's ListOptions validation (apimachinery
    /// `ValidateListOptions`) for the streaming-list parameters: the 422
    /// `Invalid` Status it answers, with its wording, or nil when valid.
    static func invalidListOptions(_ query: [String: String], watch: Bool, watchList: Bool) -> Data? {
        let sendInitialEvents = query["sendInitialEvents"].map { !$0.isEmpty } ?? false
        let match = query["resourceVersionMatch"] ?? ""
        var causes: [(field: String, detail: String)] = []
        if !watch {
            if sendInitialEvents { causes.append(("sendInitialEvents", "sendInitialEvents is forbidden for list")) }
        } else {
            if sendInitialEvents {
                if match != "NotOlderThan" {
                    causes.append(("resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
                }
                if !watchList {
                    causes.append(("sendInitialEvents", "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"))
                }
            }
            if !match.isEmpty && !sendInitialEvents {
                causes.append(("resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
            }
        }
        guard !causes.isEmpty else { return nil }
        // field.ErrorList's aggregate: one error bare, several in brackets.
        let errors = causes.map { "\($0.field): Forbidden: \($0.detail)" }
        let joined = errors.count == 1 ? errors[0] : "[" + errors.joined(separator: ", ") + "]"
        return KubeWire.status(
            code: 422, reason: "Invalid", message: "ListOptions.meta.k8s.io \"\" is invalid: \(joined)",
            details: [
                "group": "meta.k8s.io", "kind": "ListOptions",
                "causes": causes.map { ["reason": "FieldValueForbidden", "message": "Forbidden: \($0.detail)", "field": $0.field] },
            ]
        )
    }

    /// Ends the watch `serial` on `channel` cleanly, if it is still open (its timeoutSeconds ran out).
    mutating func endWatch(on channel: any Channel, serial: Int) {
        let id = ObjectIdentifier(channel)
        guard watches[id]?.serial == serial else { return }
        emit(.end(.endOfStream), to: id)
    }

    private mutating func respond(
        _ channel: any Channel, status: Int, body: Data, contentType: String = "application/json"
    ) {
        var responseHead = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status))
        responseHead.headers.add(name: "Content-Type", value: contentType)
        responseHead.headers.add(name: "Cache-Control", value: "no-cache, private")
        responseHead.headers.add(name: "Content-Length", value: String(body.count))
        let head = responseHead
        bytesSent += Self.headBytes(head) + body.count
        if stalled && status == 200 {
            channel.eventLoop.execute { channel.writeAndFlush(HTTPServerResponsePart.head(head), promise: nil) }
            parkedBodies.append((channel, body))
            return
        }
        channel.eventLoop.execute {
            channel.write(HTTPServerResponsePart.head(head), promise: nil)
            channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
        }
    }

    /// `/apis/events.k8s.io/v1/namespaces/<ns>/events[/<name>]`.
    static func isEventsPath(_ segments: [String]) -> Bool {
        segments[0...3] == ["apis", "events.k8s.io", "v1", "namespaces"] && segments[5] == "events"
    }

    /// `spec.nodeName=<n>` (or `==`) out of a field selector.
    static func nodeName(fromSelector selector: String?) -> String? {
        guard let selector else { return nil }
        for term in selector.split(separator: ",") {
            for separator in ["==", "="] {
                let prefix = "spec.nodeName" + separator
                if term.hasPrefix(prefix) { return String(term.dropFirst(prefix.count)) }
            }
        }
        return nil
    }
}
