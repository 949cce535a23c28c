import NIOCore
import NIOHTTP1

/// Closes a connection that has gone idle, and closes connections at shutdown
/// without cutting off a response.
///
/// Sits after the HTTP decoder, so it sees requests and responses as parts.
/// While a request has been read in full and its response is not finished, the
/// server is the one working (a reconcile may take a while): idle events are
/// ignored then. A client that stalls mid-request is idle and gets closed.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Sent (inbound) by the server at graceful shutdown.
    struct ShutdownRequested: Sendable {}

    private var answering = false
    private var shuttingDown = false
    private let clock: RequestClock

    init(clock: RequestClock) {
        self.clock = clock
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = Self.unwrapInboundIn(data) {
            answering = true
            clock.requestComplete()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = Self.unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        answering = false
        clock.responseComplete()
        guard shuttingDown else {
            context.write(data, promise: promise)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.cascade(to: promise)
        context.write(data, promise: written)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is IdleStateHandler.IdleStateEvent:
            if !answering { context.close(promise: nil) }
        case is ShutdownRequested:
            shuttingDown = true
            if !answering { context.close(promise: nil) }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }
}
