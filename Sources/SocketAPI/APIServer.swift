import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ReaperCore
import ServiceLifecycle

/// The socket API (design §6): HTTP/1.1 with JSON bodies on a Unix socket.
///
/// `run()` binds the socket (or takes the one systemd passed), serves until
/// graceful shutdown or cancellation, then closes it and removes the socket
/// file it created. At graceful shutdown it stops accepting, lets answers in
/// progress finish and closes idle connections; at cancellation it closes all.
public final class APIServer: Service, Sendable {
    public let configuration: APIServerConfiguration
    private let handler: RequestHandler
    private let logger: Logger
    private let socketGroupID: UInt32?
    private let listening = ListeningSignal()
    /// Whether `run()` got as far as accepting connections.
    private let listened = Synchronized(false)
    /// The one event loop of the listener and every connection it accepts.
    private let eventLoop: any EventLoop

    /// Throws when `socketGroup` names no group or a limit is not positive.
    public init(
        configuration: APIServerConfiguration, provider: any AgentAPIProvider,
        registry: PrometheusCollectorRegistry, recorder: AgentMetricsRecorder? = nil, logger: Logger
    ) throws {
        for (name, value) in [
            ("maxBodyBytes", configuration.maxBodyBytes), ("maxHeaderBytes", configuration.maxHeaderBytes),
            ("maxConnections", configuration.maxConnections),
            ("maxConnectionsPerProcess", configuration.maxConnectionsPerProcess),
            ("maxConnectionsPerUser", configuration.maxConnectionsPerUser),
        ] where value <= 0 {
            throw APIServerError(code: .configuration, message: "socket API \(name) must be positive, not \(value)")
        }
        guard configuration.idleTimeout > .zero, configuration.requestTimeout > .zero else {
            throw APIServerError(code: .configuration, message: "socket API idleTimeout and requestTimeout must be positive")
        }
        self.configuration = configuration
        self.handler = RequestHandler(
            provider: provider, recorder: recorder ?? AgentMetricsRecorder(registry: registry), scrapeOnly: configuration.tcpListen != nil
        )
        self.logger = logger
        self.socketGroupID = try configuration.tcpListen != nil ? nil : configuration.socketGroup.map { name throws(APIServerError) in
            try SocketFile.resolveGroup(name)
        }
        // One loop, not the group: each accepted connection takes its slot
        // (`ConnectionLimiter`) on its own loop, and with connections spread
        // over loops a busy loop admitted its connections after later ones,
        // so a connection past a share could be served and an earlier one
        // refused. On one loop, slots are taken in the order connections
        // arrive. The API's work runs in tasks; the loop only moves bytes.
        self.eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        // A bad socket path is a startup error in one line, before anything runs.
        if configuration.inheritedListenerFD == nil && configuration.tcpListen == nil {
            _ = try SocketFile.makeAddress(configuration.socketPath)
            try SocketFile.ensureParentDirectory(of: configuration.socketPath)
            _ = try SocketFile.inspect(configuration.socketPath)
        }
    }

    /// Returns once the socket accepts connections (true: send `READY=1`),
    /// or once `run()` has failed or ended without getting there, or when the
    /// calling task is cancelled (false: not ready).
    @discardableResult
    public func waitUntilListening() async -> Bool {
        await listening.wait()
        return listened.withLock { $0 }
    }

    // MARK: Running

    typealias HTTPChannel = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    /// An accepted connection, its peer and, when it got no connection slot, why.
    struct Connection: Sendable {
        var channel: HTTPChannel
        var peer: PeerCredentials?
        var refusal: ConnectionLimiter.Refusal?
    }

    public func run() async throws {
        defer { listening.signal() }
        let path = configuration.socketPath
        let limiter = ConnectionLimiter(
            limit: configuration.maxConnections, perProcess: configuration.maxConnectionsPerProcess,
            perUser: configuration.maxConnectionsPerUser
        )
        let bootstrap = ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: Int32(clamping: max(128, configuration.maxConnections)))
            .childChannelOption(.allowRemoteHalfClosure, value: true)

        let server: NIOAsyncChannel<Connection, Never>
        var created: SocketFile.Identity?
        if let address = configuration.tcpListen {
            do {
                server = try await bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .bind(host: address.host, port: address.port) { channel in self.initialize(channel, limiter: limiter) }
            } catch {
                throw APIServerError(code: .bind, message: "cannot listen on metrics.listen \(address): \(error)")
            }
            logger.info("metrics listening", metadata: ["listen": "\(address)"])
        } else if let fd = configuration.inheritedListenerFD {
            try SocketFile.validateInherited(fd, path: path)
            server = try await bootstrap.bind(fd) { channel in self.initialize(channel, limiter: limiter) }
            logger.info("socket API listening", metadata: ["socket": "\(path)", "fd": "\(fd)", "activation": "systemd"])
        } else {
            (server, created) = try await bindSocketFile(bootstrap, limiter: limiter)
            logger.info("socket API listening", metadata: ["socket": "\(path)"])
        }
        defer {
            if let created, !SocketFile.removeIfOurs(path, identity: created) {
                logger.debug("socket file not removed: replaced or gone", metadata: ["socket": "\(path)"])
            }
        }
        listened.withLock { $0 = true }
        listening.signal()

        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { connections in
                try await withTaskCancellationOrGracefulShutdownHandler {
                    do {
                        for try await connection in connections {
                            group.addTask { await self.serve(connection) }
                        }
                    } catch is CancellationError {
                        // Cancelled: a normal end for a service.
                    }
                } onCancelOrGracefulShutdown: {
                    server.channel.close(promise: nil)
                }
            }
        }
        logger.info("socket API stopped", metadata: ["socket": "\(configuration.endpointDescription)"])
    }

    /// Binds on a temporary name beside the path, gives it mode 0660 and the
    /// group, then renames it into place (replacing a stale socket), so the
    /// socket is never reachable with looser permissions.
    private func bindSocketFile(
        _ bootstrap: ServerBootstrap, limiter: ConnectionLimiter
    ) async throws -> (NIOAsyncChannel<Connection, Never>, SocketFile.Identity) {
        let path = configuration.socketPath
        _ = try SocketFile.makeAddress(path)
        try SocketFile.ensureParentDirectory(of: path)
        if try SocketFile.inspect(path) == .stale {
            logger.notice("replacing a stale socket", metadata: ["socket": "\(path)"])
        }
        let bindPath = SocketFile.temporaryPath(for: path) ?? path
        if bindPath == path {
            // No room for a temporary name: free the path, bind, then tighten.
            SocketFile.removeQuietly(path)
        } else {
            SocketFile.removeQuietly(bindPath)
        }
        let server: NIOAsyncChannel<Connection, Never>
        do {
            server = try await bootstrap.bind(unixDomainSocketPath: bindPath) { channel in
                self.initialize(channel, limiter: limiter)
            }
        } catch {
            if bindPath != path { SocketFile.removeQuietly(bindPath) }
            throw APIServerError(code: .bind, message: "cannot bind the socket \(path): \(error)")
        }
        do {
            return (server, try SocketFile.publish(bound: bindPath, at: path, group: socketGroupID))
        } catch {
            try? await server.channel.close()
            throw error
        }
    }

    /// The pipeline of one accepted connection: the whole-request deadline,
    /// the idle timer, the HTTP codec with the header limit, the idle/shutdown
    /// guard, then the async channel. The slot is taken once the peer is
    /// known, against the total and the peer's process and user shares.
    func initialize(_ channel: any Channel, limiter: ConnectionLimiter) -> EventLoopFuture<Connection> {
        let configuration = self.configuration
        // TCP peers have no SO_PEERCRED: they count against the total only.
        let peerCredentials = configuration.tcpListen == nil
            ? PeerCredentials.of(channel) : channel.eventLoop.makeSucceededFuture(nil)
        return peerCredentials.flatMapThrowing { peer in
            let refusal = limiter.acquire(peer)
            if refusal == nil {
                channel.closeFuture.whenComplete { _ in limiter.release(peer) }
            }
            let pipeline = channel.pipeline.syncOperations
            let clock = RequestClock()
            try pipeline.addHandler(RequestDeadlineHandler(clock: clock, timeout: TimeAmount(configuration.requestTimeout)))
            try pipeline.addHandler(IdleStateHandler(allTimeout: TimeAmount(configuration.idleTimeout)))
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = configuration.maxHeaderBytes
            limits.maxHeaderListSize = configuration.maxHeaderBytes
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits
            )
            try pipeline.addHandler(ConnectionGuard(clock: clock))
            let http = try HTTPChannel(wrappingChannelSynchronously: channel)
            return Connection(channel: http, peer: peer, refusal: refusal)
        }
    }

    // MARK: One connection

    func serve(_ connection: Connection) async {
        let channel = connection.channel.channel
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                do {
                    try await connection.channel.executeThenClose { inbound, outbound in
                        try await self.exchange(connection, inbound: inbound, outbound: outbound)
                    }
                } catch {
                    logger.debug("connection ended", metadata: ["error": "\(error)"])
                }
            } onGracefulShutdown: {
                channel.pipeline.fireUserInboundEventTriggered(ConnectionGuard.ShutdownRequested())
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// A read request: its head and body, or why it cannot be answered.
    private enum Incoming {
        case request(HTTPRequestHead, ByteBuffer)
        case tooLarge(HTTPRequestHead)
        case malformed(HTTPRequestHead?, String)
        case closed
    }

    /// Request, response, request, ... until the client or an error ends it.
    private func exchange(
        _ connection: Connection,
        inbound: NIOAsyncChannelInboundStream<HTTPServerRequestPart>,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var parts = inbound.makeAsyncIterator()
        if let refusal = connection.refusal {
            let message = switch refusal {
            case .full: "the agent serves at most \(configuration.maxConnections) connections"
            case .process: "the agent serves at most \(configuration.maxConnectionsPerProcess) connections to one process"
            case .user: "the agent serves at most \(configuration.maxConnectionsPerUser) connections to one user"
            }
            let response = APIResponse.error(.serviceUnavailable, code: "too-many-connections", message: message, close: true)
            try await send(response, version: .http1_1, keepAlive: false, to: outbound)
            return
        }
        while true {
            let incoming: Incoming
            do {
                incoming = try await readRequest(&parts, outbound: outbound)
            } catch let error as HTTPParserError {
                let response: APIResponse =
                    if error == .headerOverflow {
                        .error(
                            .requestHeaderFieldsTooLarge, code: "headers-too-large",
                            message: "request line and headers exceed \(configuration.maxHeaderBytes) bytes", close: true
                        )
                    } else {
                        .error(.badRequest, code: "bad-request", message: "malformed HTTP request: \(error)", close: true)
                    }
                try await send(response, version: .http1_1, keepAlive: false, to: outbound)
                return
            }
            switch incoming {
            case .closed:
                return
            case .malformed(let head, let message):
                let response = APIResponse.error(.badRequest, code: "bad-request", message: message, close: true)
                try await send(response, version: head?.version ?? .http1_1, keepAlive: false, to: outbound)
                return
            case .tooLarge(let head):
                let response = APIResponse.error(
                    .payloadTooLarge, code: "payload-too-large",
                    message: "request body exceeds \(configuration.maxBodyBytes) bytes", close: true
                )
                try await send(response, version: head.version, keepAlive: false, to: outbound)
                return
            case .request(let head, _):
                let request = APIRequest(method: head.method, uri: head.uri, peer: connection.peer)
                let response = await handler.respond(to: request)
                let keepAlive = head.isKeepAlive && !response.closeConnection && !Task.isShuttingDownGracefully
                logger.debug(
                    "request",
                    metadata: [
                        "method": "\(head.method.rawValue)", "uri": "\(head.uri)", "status": "\(response.status.code)",
                        "peer_uid": "\(connection.peer.map { String($0.uid) } ?? "unknown")",
                    ]
                )
                try await send(response, version: head.version, keepAlive: keepAlive, to: outbound)
                guard keepAlive else { return }
            }
        }
    }

    /// Reads one request's head and body, stopping early at a body over the limit.
    private func readRequest(
        _ parts: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws -> Incoming {
        guard let first = try await parts.next() else { return .closed }
        guard case .head(let head) = first else {
            return .malformed(nil, "request body without a request head")
        }
        // The decoder's limits count header bytes without separators (and
        // bound memory); this counts the head as sent.
        guard Self.headSize(head) <= configuration.maxHeaderBytes else { throw HTTPParserError.headerOverflow }
        let limit = configuration.maxBodyBytes
        let lengths = head.headers["content-length"]
        if let declared = lengths.first {
            guard let length = Int(declared), length >= 0, lengths.allSatisfy({ $0 == declared }) else {
                return .malformed(head, "bad Content-Length '\(UserText.excerpt(declared))'")
            }
            if length > limit { return .tooLarge(head) }
        }
        if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            try await outbound.write(.head(HTTPResponseHead(version: head.version, status: .continue)))
        }
        var body = ByteBuffer()
        while let part = try await parts.next() {
            switch part {
            case .head:
                return .malformed(head, "a request head before the previous request's end")
            case .body(var chunk):
                guard body.readableBytes + chunk.readableBytes <= limit else { return .tooLarge(head) }
                body.writeBuffer(&chunk)
            case .end:
                return .request(head, body)
            }
        }
        // The client went away mid-request.
        return .closed
    }

    /// The request line and headers as sent, CRLFs included.
    static func headSize(_ head: HTTPRequestHead) -> Int {
        var size = head.method.rawValue.utf8.count + 1 + head.uri.utf8.count + " HTTP/1.1\r\n\r\n".utf8.count
        for (name, value) in head.headers {
            size += name.utf8.count + 2 + value.utf8.count + 2
        }
        return size
    }

    private func send(
        _ response: APIResponse, version: HTTPVersion, keepAlive: Bool,
        to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        handler.recorder.recordHTTPRequest(status: Int(response.status.code))
        try await outbound.write(contentsOf: [
            .head(response.head(version: version, keepAlive: keepAlive)),
            .body(.byteBuffer(response.body)),
            .end(nil),
        ])
    }
}
