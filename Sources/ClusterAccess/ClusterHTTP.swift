import AsyncHTTPClient
import ReaperCore
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// The HTTP client the pod sources use, and requests that carry the
/// current credentials.
public enum ClusterHTTP {
    /// An HTTP/1.1 client for the API server or the kubelet: a connect
    /// timeout, a read timeout (the longest silence tolerated inside a
    /// response, a watch included: keep it above the server's bookmark
    /// interval), no redirects (a redirect could carry the token to another
    /// host), no decompression. TLS comes per request (`request(_:credentials:)`),
    /// so rotated credentials need no new client. `logger` gets the client's
    /// background activity. Shut it down with `shutdown()`.
    public static func makeClient(
        eventLoopGroup: any EventLoopGroup,
        connectTimeout: TimeAmount = .seconds(10),
        readTimeout: TimeAmount = .seconds(120),
        logger: Logger
    ) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: connectTimeout, read: readTimeout),
            decompression: .disabled
        )
        configuration.httpVersion = .http1Only
        configuration.connectionPool = .init(idleTimeout: .seconds(60))
        // A refused or failed connection fails the request at once: the pod
        // sources retry with their own backoff and say what failed, and
        // `check` answers in a moment rather than after requestTimeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration, backgroundActivityLogger: logger)
    }

    /// A request's failure as one line that shows no credential. AHC's own
    /// errors are named by their `shortDescription`, which by its contract
    /// holds no associated value (its header validation would echo the
    /// header's value, `Bearer <token>`); anything else is described, then
    /// scrubbed of every credential `request` carried.
    public static func describe(_ error: any Error, request: HTTPClientRequest?) -> String {
        if let failure = connectionFailure(error) { return failure }
        if let error = error as? HTTPClientError { return error.shortDescription }
        var text = String(describing: error)
        for value in request?.headers["Authorization"] ?? [] {
            text = Secret(value).redact(in: text)
            if let space = value.firstIndex(of: " ") { text = Secret(String(value[value.index(after: space)...])).redact(in: text) }
        }
        return UserText.excerpt(text, limit: 300)
    }

    /// A request to `path` (with its query, e.g. `/api/v1/pods?watch=1`) on
    /// the credentials' server, with their TLS configuration and
    /// `Authorization` header as of now, and `Accept: application/json`.
    public static func request(
        _ path: String, method: HTTPMethod = .GET, credentials: ClusterCredentials
    ) async throws(ClusterAccessError) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: credentials.server + (path.hasPrefix("/") ? path : "/" + path))
        request.method = method
        if credentials.server.hasPrefix("https:") {
            request.tlsConfiguration = try await credentials.tlsConfiguration()
        }
        if let authorization = try await credentials.authorization() {
            request.headers.add(name: "Authorization", value: authorization)
        }
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "volume-reaper")
        return request
    }
}
