/// Where and how the socket API listens.
public struct APIServerConfiguration: Sendable, Hashable {
    /// The Unix socket's path (design §6: `/run/volume-reaper/api.sock`).
    /// With `inheritedListenerFD` it only names the socket in logs and errors.
    public var socketPath: String
    /// The group the socket file is given (mode 0660: owner and group may
    /// connect); nil keeps the process's group. Resolved when the server is made.
    public var socketGroup: String?
    /// A listening socket passed by systemd socket activation (`sd_listen_fds`).
    /// The server serves on it instead of binding, and never removes its file.
    public var inheritedListenerFD: Int32?
    /// A TCP address to listen on instead of the Unix socket (the metrics
    /// listener): then only the read-only `GET /metrics` and `GET /healthz`
    /// are served, every other path is 404, and `socketPath`, `socketGroup`
    /// and `inheritedListenerFD` are not used. Limits and deadlines are the same.
    public var tcpListen: TCPListenAddress?
    /// Request bodies larger than this get 413.
    public var maxBodyBytes: Int
    /// A request line and headers larger than this get 431.
    public var maxHeaderBytes: Int
    /// A connection with no traffic for this long (and no request being
    /// answered) is closed.
    public var idleTimeout: Duration
    /// A request's line, headers and body must all arrive within this long
    /// of its first byte; bytes trickling in do not extend it (unlike
    /// `idleTimeout`). A connection past it is closed.
    public var requestTimeout: Duration
    /// Connections past this many get 503 and are closed.
    public var maxConnections: Int
    /// Connections one client process (`SO_PEERCRED` pid) may hold.
    public var maxConnectionsPerProcess: Int
    /// Connections all processes of one user (`SO_PEERCRED` uid, root
    /// included) may hold together: a share of `maxConnections`, so that one
    /// user's clients leave room for the others.
    public var maxConnectionsPerUser: Int

    public init(
        socketPath: String,
        socketGroup: String? = nil,
        inheritedListenerFD: Int32? = nil,
        tcpListen: TCPListenAddress? = nil,
        maxBodyBytes: Int = 64 * 1024,
        maxHeaderBytes: Int = 16 * 1024,
        idleTimeout: Duration = .seconds(30),
        requestTimeout: Duration = .seconds(10),
        maxConnections: Int = 512,
        maxConnectionsPerProcess: Int = 32,
        maxConnectionsPerUser: Int = 256
    ) {
        self.socketPath = socketPath
        self.socketGroup = socketGroup
        self.inheritedListenerFD = inheritedListenerFD
        self.tcpListen = tcpListen
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerProcess = maxConnectionsPerProcess
        self.maxConnectionsPerUser = maxConnectionsPerUser
    }

    /// The metrics listener on `address`, with the socket API's limits.
    public static func metricsListener(_ address: TCPListenAddress) -> APIServerConfiguration {
        APIServerConfiguration(socketPath: "tcp://\(address)", tcpListen: address)
    }

    /// Where the server listens, for logs.
    var endpointDescription: String {
        tcpListen.map { "tcp \($0)" } ?? socketPath
    }
}
