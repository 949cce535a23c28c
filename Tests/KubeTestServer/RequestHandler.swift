import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// Reads HTTP requests off one TLS connection and hands them to the server state.
final class KubeRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: Locked<ServerState>
    private var head: HTTPRequestHead?
    private var body = Data()
    /// Request bodies (Event writes) are small; a larger one is cut here and refused.
    private static let maxBodyBytes = 1 << 20

    init(state: Locked<ServerState>) { self.state = state }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = Data()
        case .body(let chunk):
            if body.count + chunk.readableBytes <= Self.maxBodyBytes { body.append(contentsOf: chunk.readableBytesView) }
        case .end:
            guard let head else { return }
            self.head = nil
            let channel = context.channel
            let commonName = Self.clientCommonName(context.pipeline)
            let body = body
            self.body = Data()
            let timeout = state.withLock { $0.handle(head: head, body: body, channel: channel, clientCommonName: commonName) }
            if let timeout {
                let state = self.state
                if timeout.timeout > 2, state.withLock({ $0.bookmarksBeforeTimeout }) {
                    channel.eventLoop.scheduleTask(in: .seconds(timeout.timeout - 2)) {
                        state.withLock { $0.bookmarkBeforeEnd(on: channel, serial: timeout.serial) }
                    }
                }
                channel.eventLoop.scheduleTask(in: .seconds(timeout.timeout)) {
                    state.withLock { $0.endWatch(on: channel, serial: timeout.serial) }
                }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // TLS refusals, resets, parse errors: the connection is done; never crash.
        context.close(promise: nil)
    }

    /// The CN of the client certificate the TLS handshake verified, if any.
    private static func clientCommonName(_ pipeline: ChannelPipeline) -> String? {
        guard let tls = try? pipeline.syncOperations.handler(type: NIOSSLServerHandler.self),
              let certificate = tls.peerCertificate
        else { return nil }
        return certificate.subjectName.last { $0.type == .commonName }?.value
    }
}
