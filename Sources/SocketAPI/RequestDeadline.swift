import NIOCore

/// Where one connection is in its request/response cycle, shared by the
/// deadline handler (before the HTTP decoder, it sees the first byte of a
/// request) and `ConnectionGuard` (after it, it sees the request's end and
/// the response's end). Both run on the connection's event loop.
final class RequestClock {
    enum Phase {
        /// Between requests: `idleTimeout` applies.
        case waiting
        /// A request has begun: it must be complete by the deadline.
        case receiving
        /// The request is complete; the server is answering.
        case answering
    }

    var phase = Phase.waiting
    var deadline: Scheduled<Void>?

    /// The request is in: no deadline while the server works.
    func requestComplete() {
        phase = .answering
        deadline?.cancel()
        deadline = nil
    }

    /// The response is out: the next request's first byte starts a new deadline.
    func responseComplete() {
        if phase == .answering { phase = .waiting }
    }
}

/// Closes a connection whose request (line, headers and body) is not
/// complete within `timeout` of its first byte. Unlike the idle timer, bytes
/// arriving do not restart it, so a client sending a byte a second cannot
/// hold a connection slot for longer than `timeout`.
final class RequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let clock: RequestClock
    private let timeout: TimeAmount

    init(clock: RequestClock, timeout: TimeAmount) {
        self.clock = clock
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if clock.phase == .waiting {
            clock.phase = .receiving
            let clock = clock
            let channel = context.channel
            clock.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                if clock.phase == .receiving { channel.close(promise: nil) }
            }
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        clock.deadline?.cancel()
        clock.deadline = nil
        context.fireChannelInactive()
    }
}
