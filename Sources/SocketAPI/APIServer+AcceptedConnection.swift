import NIOCore

// The per-connection half of `run()`, reachable without a listening socket, so
// the fuzz harness and the corpus replay (Sources/FuzzTargets) drive the real
// pipeline and exchange over an in-memory channel. Keep these two calls the
// exact ones `run()` makes for each accepted connection.
extension APIServer {
    /// A connection whose pipeline is set up as for an accepted socket.
    public struct AcceptedConnection: Sendable {
        fileprivate let connection: Connection
    }

    /// Sets up `channel`'s pipeline as `run()` does for an accepted socket,
    /// with a connection slot of its own. `run()` is not needed and not called.
    public func accept(_ channel: any Channel) async throws -> AcceptedConnection {
        let limiter = ConnectionLimiter(
            limit: configuration.maxConnections, perProcess: configuration.maxConnectionsPerProcess,
            perUser: configuration.maxConnectionsPerUser
        )
        return AcceptedConnection(connection: try await initialize(channel, limiter: limiter).get())
    }

    /// Serves the connection until the client, an error or a limit ends it, then closes it.
    public func serve(_ accepted: AcceptedConnection) async {
        await serve(accepted.connection)
    }
}
