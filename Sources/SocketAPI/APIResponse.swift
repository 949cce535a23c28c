import Foundation
import NIOCore
import NIOHTTP1
import ReaperCore

/// One answer, before it becomes HTTP parts.
struct APIResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: ByteBuffer
    var extraHeaders: [(String, String)] = []
    /// Close the connection after this response (errors that leave the
    /// request stream in an unknown state).
    var closeConnection = false

    static let jsonType = "application/json"
    static let prometheusType = "text/plain; version=0.0.4; charset=utf-8"

    /// `value` as JSON, encoded as the plan is (RFC 3339 dates, sorted keys).
    static func json(_ value: some Encodable, status: HTTPResponseStatus = .ok) -> APIResponse {
        do {
            return APIResponse(status: status, contentType: jsonType, body: ByteBuffer(data: try Plan.encoder().encode(value)))
        } catch {
            return .error(.internalServerError, code: "internal", message: "cannot encode the answer: \(error)")
        }
    }

    static func raw(_ data: Data, contentType: String = jsonType) -> APIResponse {
        APIResponse(status: .ok, contentType: contentType, body: ByteBuffer(data: data))
    }

    static func error(
        _ status: HTTPResponseStatus, code: String, message: String, close: Bool = false
    ) -> APIResponse {
        let body = APIErrorBody(code: code, message: message)
        let data = (try? Plan.encoder().encode(body)) ?? Data(#"{"error":{"code":"internal","message":"encoding"}}"#.utf8)
        return APIResponse(status: status, contentType: jsonType, body: ByteBuffer(data: data), closeConnection: close)
    }

    func head(version: HTTPVersion, keepAlive: Bool) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Cache-Control", value: "no-store")
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        return HTTPResponseHead(version: version, status: status, headers: headers)
    }
}

extension ByteBuffer {
    init(data: Data) {
        self = ByteBuffer(bytes: data)
    }
}
