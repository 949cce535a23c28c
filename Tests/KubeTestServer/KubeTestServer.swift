import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A kube-apiserver and kubelet stand-in for tests, in-process: NIO over TLS
/// on 127.0.0.1 (ephemeral port), speaking the real protocol.
///
/// - `GET /api/v1/pods?fieldSelector=spec.nodeName=<n>`: a PodList (items
///   without kind/apiVersion, list `metadata.resourceVersion`).
/// - `GET /api/v1/pods?watch=true&resourceVersion=<rv>&allowWatchBookmarks=true&timeoutSeconds=<t>`:
///   a chunked stream, one `{"type":…,"object":…}` line per event; changes after
///   `rv` replayed from the history, then live; no `rv` (or `0`) starts with
///   ADDED for every current pod; `sendInitialEvents=true` too, closed by a
///   bookmark annotated `k8s.io/initial-events-end`; a `rv` older than the
///   compaction point gets an `ERROR` event with a 410 `Expired` Status, then
///   the end of the stream; `timeoutSeconds` ends the stream cleanly.
///   `limit` (or ``setForcedPageSize(_:)``, as a misbehaving server) cuts a
///   LIST into pages linked by `metadata.continue`, all at the first page's
///   resourceVersion; a token older than the compaction point gets 410.
/// - `GET /pods`: the kubelet's PodList, served as the bytes given.
/// - `POST /apis/events.k8s.io/v1/namespaces/<ns>/events` and `PATCH …/events/<name>`:
///   Events kept as the API server keeps them (``clusterEvents``).
///
/// Authentication as the apiserver does it: a client certificate verified
/// against the PKI's CA (when requested), else a bearer token from
/// ``acceptedTokens``, else 401 (unless anonymous is allowed). Every request is
/// recorded (``requests``). Controls change pods, send bookmarks, expire the
/// history, drop or stall streams, and switch on failure and garbage modes.
///
/// Thread-safe; each test starts its own server (one event loop thread) and
/// calls ``stop()``.
public final class KubeTestServer: Sendable {
    /// Whether the TLS handshake asks for a client certificate.
    public enum ClientCertificates: Sendable {
        /// Not requested: only tokens (or anonymous) authenticate.
        case notRequested
        /// Requested, verified against the CA when sent, not required.
        case optional
        /// Required and verified: the handshake fails without one.
        case required
    }

    public struct Configuration: Sendable {
        public var pki: TestPKI
        public var clientCertificates: ClientCertificates
        /// Bearer tokens that authenticate (changeable later with ``setAcceptedTokens(_:)``).
        public var acceptedTokens: Set<String>
        /// Requests without credentials are served (as `system:anonymous`).
        public var allowAnonymous: Bool
        /// The resourceVersion before the first change.
        public var initialResourceVersion: Int
        /// The serving certificate; the PKI's server certificate when nil.
        public var servingCertificate: CertificateFiles?

        public init(
            pki: TestPKI, clientCertificates: ClientCertificates = .optional, acceptedTokens: Set<String> = [],
            allowAnonymous: Bool = false, initialResourceVersion: Int = 1000, servingCertificate: CertificateFiles? = nil
        ) {
            self.pki = pki
            self.clientCertificates = clientCertificates
            self.acceptedTokens = acceptedTokens
            self.allowAnonymous = allowAnonymous
            self.initialResourceVersion = initialResourceVersion
            self.servingCertificate = servingCertificate
        }
    }

    /// What a request asked for.
    public enum RequestKind: String, Sendable, Hashable {
        case list, watch, kubeletPods, other
        /// `events.k8s.io/v1` Event writes (POST, PATCH).
        case events
    }

    /// One request as received.
    public struct RecordedRequest: Sendable {
        public var method: String
        /// The path without the query.
        public var path: String
        /// The decoded query parameters (last value wins).
        public var query: [String: String]
        public var kind: RequestKind
        /// The verified client certificate's CN, if one was sent.
        public var clientCommonName: String?
        /// The `Authorization: Bearer` token, if sent.
        public var bearerToken: String?
        /// The HTTP status answered.
        public var status: Int
        /// When it arrived: CLOCK_MONOTONIC (DispatchTime uptime).
        public var uptimeNanoseconds: UInt64 = DispatchTime.now().uptimeNanoseconds
    }

    /// How ``dropWatches(_:)`` ends the open watch streams.
    public enum DropMode: Sendable {
        /// The terminating chunk, as a server-side timeout does: a clean end.
        case endOfStream
        /// The connection closed between two event lines, without the terminating chunk.
        case atLineBoundary
        /// Half an event line written, then the connection closed.
        case midLine
    }

    /// Garbage the server can answer with.
    public struct GarbageModes: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// LISTs answer 200 with a body that is not JSON.
        public static let listBody = GarbageModes(rawValue: 1)
        /// New watches start with a line that is not JSON.
        public static let watchLine = GarbageModes(rawValue: 2)
        /// The kubelet's `/pods` answers 200 with a body that is not JSON.
        public static let kubeletBody = GarbageModes(rawValue: 4)
    }

    /// How new watches misbehave (``setWatchMisbehavior(_:)``).
    public enum WatchMisbehavior: Sendable {
        case none
        /// Every new watch gets an `ERROR` event with a 410 Status, then the end of the stream.
        case expireAtOnce
        /// Every new watch gets one BOOKMARK, then the end of the stream.
        case oneBookmarkThenEnd
    }

    /// A watch event written to a client's socket (for latency benchmarks).
    public struct WrittenEvent: Sendable {
        public var type: String
        public var uid: String?
        public var resourceVersion: Int
        /// `DispatchTime.now().uptimeNanoseconds` when the write completed.
        public var uptimeNanoseconds: UInt64
    }

    /// `https://127.0.0.1:<port>`
    public let url: String
    public let port: Int
    public let configuration: Configuration

    let group: MultiThreadedEventLoopGroup
    let serverChannel: any Channel
    let state: Locked<ServerState>

    private init(configuration: Configuration, group: MultiThreadedEventLoopGroup, channel: any Channel, state: Locked<ServerState>) {
        self.configuration = configuration
        self.group = group
        self.serverChannel = channel
        self.state = state
        port = channel.localAddress?.port ?? 0
        url = "https://127.0.0.1:\(port)"
    }

    /// Starts a server on 127.0.0.1 with an ephemeral port.
    public static func start(_ configuration: Configuration) async throws -> KubeTestServer {
        let serving = configuration.servingCertificate ?? configuration.pki.server
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(serving.certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: serving.key, format: .pem))
        )
        tls.applicationProtocols = ["http/1.1"]
        // A cut or stopped connection waits this long for the client's close_notify (default 5 s).
        tls.shutdownTimeout = .milliseconds(200)
        switch configuration.clientCertificates {
        case .notRequested: tls.certificateVerification = .none
        case .optional: tls.certificateVerification = .optionalVerification
        case .required: tls.certificateVerification = .noHostnameVerification
        }
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(configuration.pki.ca.certificate))
        let sslContext = try NIOSSLContext(configuration: tls)

        let state = Locked(ServerState(configuration: configuration))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // An API server that is down: the connection is
                        // accepted and closed at once (counted).
                        if state.withLock({ state in
                            if state.refusingConnections { state.refusedConnections += 1 }
                            return state.refusingConnections
                        }) {
                            channel.close(promise: nil)
                            return
                        }
                        let handlers = channel.pipeline.syncOperations
                        try handlers.addHandler(NIOSSLServerHandler(context: sslContext))
                        try handlers.configureHTTPServerPipeline(withErrorHandling: true)
                        try handlers.addHandler(KubeRequestHandler(state: state))
                        state.withLock { $0.connections[ObjectIdentifier(channel)] = channel }
                        channel.closeFuture.whenComplete { _ in
                            state.withLock { $0.forget(channel) }
                        }
                    }
                }
                .bind(host: "127.0.0.1", port: 0)
                .get()
            return KubeTestServer(configuration: configuration, group: group, channel: channel, state: state)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Closes the listener and every connection, and stops the event loop.
    public func stop() async {
        let connections = state.withLock { state -> [any Channel] in
            state.stopped = true
            state.bookmarkTask?.cancel()
            state.bookmarkTask = nil
            return Array(state.connections.values)
        }
        try? await serverChannel.close()
        await withTaskGroup(of: Void.self) { closing in
            for connection in connections { closing.addTask { try? await connection.close() } }
        }
        try? await group.shutdownGracefully()
    }

    // MARK: Pods

    /// The resourceVersion of the last change.
    public var resourceVersion: Int { state.withLock { $0.store.resourceVersion } }

    /// Adds (or replaces) every pod of a PodList / List document (e.g. a
    /// captured fixture), in order; each is one change. Returns the last resourceVersion.
    @discardableResult
    public func loadPods(document: Data) throws -> Int {
        let items = try PodStore.items(ofDocument: document)
        return try state.withLock { state in
            for item in items { state.publish(try state.store.put(item)) }
            return state.store.resourceVersion
        }
    }

    /// Adds a pod (ADDED) or replaces it (MODIFIED); returns the new resourceVersion.
    @discardableResult
    public func putPod(json: Data) throws -> Int {
        let object = try PodStore.parseObject(json)
        return try state.withLock { state in
            let change = try state.store.put(object)
            state.publish(change)
            return change.resourceVersion
        }
    }

    /// Changes a pod's JSON object (MODIFIED); returns the new resourceVersion.
    @discardableResult
    public func modifyPod(uid: String, _ change: (inout [String: Any]) throws -> Void) throws -> Int {
        try state.withLock { state in
            let recorded = try state.store.modify(uid: uid, change)
            state.publish(recorded)
            return recorded.resourceVersion
        }
    }

    /// Sets `status.phase` (and, by default, every container `terminated`), as
    /// when a pod finishes; one MODIFIED event. Returns the new resourceVersion.
    @discardableResult
    public func setPhase(uid: String, _ phase: String, terminateContainers: Bool = true) throws -> Int {
        try modifyPod(uid: uid) { $0.setPodPhase(phase, terminateContainers: terminateContainers) }
    }

    /// Deletes a pod (DELETED with its last state); returns the new resourceVersion.
    @discardableResult
    public func deletePod(uid: String) throws -> Int {
        try state.withLock { state in
            let change = try state.store.delete(uid: uid)
            state.publish(change)
            return change.resourceVersion
        }
    }

    /// A pod's current JSON (with its resourceVersion), or nil.
    public func pod(uid: String) -> Data? {
        state.withLock { state in state.store.object(uid: uid).map { KubeWire.encode($0) } }
    }

    /// UIDs of the current pods, in insertion order.
    public var podUIDs: [String] { state.withLock { $0.store.order } }

    // MARK: Watch controls

    /// Sends a BOOKMARK at the current resourceVersion to every open watch that
    /// asked for bookmarks.
    public func sendBookmark() {
        state.withLock { $0.broadcastBookmark() }
    }

    /// Sends a BOOKMARK every `interval` (nil stops).
    public func setAutomaticBookmarks(every interval: Duration?) {
        let loop = group.next()
        let state = self.state
        state.withLock { current in
            current.bookmarkTask?.cancel()
            current.bookmarkTask = nil
            guard let interval, !current.stopped else { return }
            let amount = TimeAmount.nanoseconds(Int64(interval.components.seconds) * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000)
            current.bookmarkTask = loop.scheduleRepeatedTask(initialDelay: amount, delay: amount) { _ in
                state.withLock { $0.broadcastBookmark() }
            }
        }
    }

    /// Compacts the history: watches from any resourceVersion before now get
    /// `410 Expired`. With `closeOpenWatches`, every open watch gets that ERROR
    /// event now and its stream ends.
    public func expireHistory(closeOpenWatches: Bool = true) {
        state.withLock { state in
            state.store.compact()
            guard closeOpenWatches else { return }
            for id in Array(state.watches.keys) {
                guard let watch = state.watches[id] else { continue }
                let line = KubeWire.eventLine(
                    type: "ERROR",
                    object: KubeWire.tooOldResourceVersion(requested: watch.lastResourceVersion, oldest: state.store.oldestAvailable)
                )
                state.emit(.line(line, nil), to: id)
                state.emit(.end(.endOfStream), to: id)
            }
        }
    }

    /// A restart of the API server: every connection closes (no ERROR
    /// event: the process went away). With `compacted`, the cluster moved on
    /// meanwhile (other resources were written) and the rebuilt watch cache
    /// starts at the new revision: watches from any older resourceVersion get
    /// `410 Expired`, as from a real apiserver's fresh watch cache.
    public func restart(compacted: Bool) {
        let connections = state.withLock { state -> [any Channel] in
            if compacted {
                state.store.advance(by: 10)
                state.store.compact()
            }
            return Array(state.connections.values)
        }
        for connection in connections { connection.close(promise: nil) }
    }

    /// While true, the server is down: every new connection is closed as
    /// soon as it is accepted, and the open ones are closed now.
    public func setRefusingConnections(_ refusing: Bool) {
        let connections = state.withLock { state -> [any Channel] in
            state.refusingConnections = refusing
            return refusing ? Array(state.connections.values) : []
        }
        for connection in connections { connection.close(promise: nil) }
    }

    /// Connections closed at once because the server was down.
    public var refusedConnections: Int { state.withLock { $0.refusedConnections } }

    /// Bytes written to clients: response heads (as encoded), bodies and watch lines.
    public var bytesSent: Int { state.withLock { $0.bytesSent } }

    /// Whether a watch with `sendInitialEvents=true` is served (WatchList);
    /// when not, it is refused with 422 as a server without the WatchList
    /// feature gate refuses it.
    public func setWatchListSupported(_ supported: Bool) {
        state.withLock { $0.watchListSupported = supported }
    }

    /// As the apiserver's watch cache: a BOOKMARK to each watch that allows
    /// them 2 s before its timeoutSeconds runs out (periodic ones: ``setAutomaticBookmarks(every:)``).
    public func setBookmarksBeforeTimeout(_ enabled: Bool) {
        state.withLock { $0.bookmarksBeforeTimeout = enabled }
    }

    /// Ends every open watch stream the way `mode` says.
    public func dropWatches(_ mode: DropMode) {
        state.withLock { state in
            for id in Array(state.watches.keys) { state.emit(.end(mode), to: id) }
        }
    }

    /// While stalled, new requests get their response headers and nothing
    /// more, and open watches get no bytes; ``releaseStall()`` sends what was held.
    public func stall() {
        state.withLock { state in
            state.stalled = true
            for id in state.watches.keys where state.watches[id]?.held == nil { state.watches[id]?.held = [] }
        }
    }

    /// Ends a stall: held LIST bodies and watch events are written, in order.
    public func releaseStall() {
        state.withLock { $0.release() }
    }

    /// Writes a line that is not JSON to every open watch.
    public func injectGarbageLine() {
        state.withLock { state in
            for id in Array(state.watches.keys) { state.emit(.line(Data("<html>502 Bad Gateway</html>\n".utf8), nil), to: id) }
        }
    }

    /// The number of watch streams open now.
    public var openWatchCount: Int { state.withLock { $0.watches.count } }

    /// Called (on the event loop) each time a watch event is written to a socket.
    public func setOnEventWritten(_ callback: (@Sendable (WrittenEvent) -> Void)?) {
        state.withLock { $0.onEventWritten = callback }
    }

    // MARK: Failure modes

    /// Answers requests of `kinds` with `status` (401, 403, 500, …) and the
    /// apiserver's Status body; nil restores normal answers.
    public func setFailure(_ status: Int?, for kinds: Set<RequestKind> = [.list, .watch, .kubeletPods]) {
        state.withLock { state in
            for kind in kinds { state.failures[kind] = status }
        }
    }

    /// 403 Forbidden for every authenticated request (the Node authorizer
    /// refusing), or back to normal.
    public func setForbidden(_ forbidden: Bool) {
        setFailure(forbidden ? 403 : nil)
    }

    public func setGarbage(_ modes: GarbageModes) {
        state.withLock { $0.garbage = modes }
    }

    /// The bearer tokens that authenticate from now on.
    public func setAcceptedTokens(_ tokens: Set<String>) {
        state.withLock { $0.acceptedTokens = tokens }
    }

    public func setAllowAnonymous(_ allow: Bool) {
        state.withLock { $0.allowAnonymous = allow }
    }

    /// LISTs answer `document` byte for byte, whatever the store holds (a
    /// single Pod, a Status, duplicate UIDs: what a broken server or proxy
    /// sends); nil: the store's list again.
    public func setListAnswer(_ document: Data?) {
        state.withLock { $0.listAnswer = document }
    }

    /// Cuts every LIST into pages of `size` (with `metadata.continue`) even
    /// when the client did not ask with `limit`; nil: only when asked.
    public func setForcedPageSize(_ size: Int?) {
        state.withLock { $0.forcedPageSize = size }
    }

    /// The next `count` LISTs that carry a `continue` token get 410 Expired
    /// (the token's resourceVersion was compacted meanwhile).
    public func expireNextContinues(_ count: Int) {
        state.withLock { $0.expiringContinues = count }
    }

    public func setWatchMisbehavior(_ misbehavior: WatchMisbehavior) {
        state.withLock { $0.watchMisbehavior = misbehavior }
    }

    // MARK: Kubelet

    /// The document `GET /pods` answers with, byte for byte (nil: 404).
    public func setKubeletPods(_ document: Data?) {
        state.withLock { $0.kubeletDocument = document }
    }

    /// Serves the file's bytes at `GET /pods`.
    public func setKubeletPods(file: String) throws {
        setKubeletPods(try Data(contentsOf: URL(fileURLWithPath: file)))
    }

    // MARK: Observations

    /// Every request so far, in arrival order.
    public var requests: [RecordedRequest] { state.withLock { $0.requests } }
    public var listCount: Int { state.withLock { $0.requests.count { $0.kind == .list } } }
    public var watchCount: Int { state.withLock { $0.requests.count { $0.kind == .watch } } }
    public var kubeletPodsCount: Int { state.withLock { $0.requests.count { $0.kind == .kubeletPods } } }

    /// Waits until `condition` holds for the recorded requests, or `timeout` passes.
    public func waitForRequests(timeout: Duration = .seconds(5), _ condition: ([RecordedRequest]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLock({ condition($0.requests) }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return state.withLock { condition($0.requests) }
    }
}
