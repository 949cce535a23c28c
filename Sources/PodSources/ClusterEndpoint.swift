import AsyncHTTPClient
import ClusterAccess
import Foundation
import NIOCore
import NIOHTTP1
import ReaperCore

/// GET requests to the API server or the kubelet with the credentials as
/// they are on disk now (a rotated token or certificate is used by the next
/// request), and the answers' status turned into `PodSourceError`s.
struct ClusterEndpoint: Sendable {
    let client: HTTPClient
    let credentials: ClusterCredentials
    /// The largest body read; more is `tooLarge`.
    let maxBodyBytes: Int

    /// The full URL of `path` (with its query) on this server, for messages.
    func url(_ path: String) -> String { credentials.server + path }

    /// Sends a GET for `path` (with its query) and returns the response once
    /// its head arrived with 200. `deadline` bounds the wait for the head
    /// only; the caller bounds the body.
    func get(_ path: String, deadline: NIODeadline) async throws(PodSourceError) -> HTTPClientResponse {
        let url = url(path)
        let request: HTTPClientRequest
        do {
            request = try await ClusterHTTP.request(path, credentials: credentials)
        } catch {
            // Already one line, its values escaped once and no secret in it.
            throw PodSourceError(.credentials, error.description)
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: deadline)
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw PodSourceError(.stalled, "\(Self.shown(url)): no answer in time")
        } catch {
            throw PodSourceError(.unreachable, "\(Self.shown(url)): \(ClusterHTTP.describe(error, request: request))")
        }
        guard response.status == .ok else {
            let detail = await Self.statusMessage(response)
            let summary = "\(Self.shown(url)): HTTP \(response.status.code)\(detail.map { ": \($0)" } ?? "")"
            switch response.status.code {
            case 401:
                credentials.invalidate()
                throw PodSourceError(.unauthorized, summary + " (the credentials were not accepted)")
            case 403: throw PodSourceError(.forbidden, summary + " (the identity may not list or watch this node's pods)")
            case 410: throw PodSourceError(.expired, summary)
            case 400, 422: throw PodSourceError(.refused, summary)
            default: throw PodSourceError(.serverError, summary)
            }
        }
        return response
    }

    /// Sends `body` (JSON, of `contentType`) with `method` to `path` and
    /// returns the answer's status with the `message` of a `Status` body
    /// (4 KiB read at most; an answer's other bodies are read up to that and
    /// dropped). No answer by `deadline` or no connection throws, as one line
    /// without a credential.
    func send(
        _ method: HTTPMethod, _ path: String, body: Data, contentType: String, deadline: NIODeadline
    ) async throws(PodSourceError) -> (status: UInt, message: String?) {
        var request: HTTPClientRequest
        do {
            request = try await ClusterHTTP.request(path, method: method, credentials: credentials)
        } catch {
            throw PodSourceError(.credentials, error.description)
        }
        request.headers.add(name: "Content-Type", value: contentType)
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: deadline)
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw PodSourceError(.stalled, "\(Self.shown(url(path))): no answer in time")
        } catch {
            throw PodSourceError(.unreachable, "\(Self.shown(url(path))): \(ClusterHTTP.describe(error, request: request))")
        }
        if response.status.code == 401 { credentials.invalidate() }
        return (response.status.code, await Self.statusMessage(response))
    }

    /// The whole body, at most `maxBodyBytes`; no byte for `stallTimeout`,
    /// or the body not complete by `deadline`, is `stalled`.
    func body(of response: HTTPClientResponse, url: String, stallTimeout: TimeInterval, deadline: ContinuousClock.Instant) async throws(PodSourceError) -> Data {
        let shown = Self.shown(url)
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > maxBodyBytes {
            throw PodSourceError(.tooLarge, "\(shown): answer of \(length) bytes is over the limit of \(maxBodyBytes)")
        }
        let limit = maxBodyBytes
        return try await StallGuard.run(
            stallTimeout: stallTimeout, deadline: deadline,
            atDeadline: .failure(PodSourceError(.stalled, "\(shown): answer not complete in time")), what: shown
        ) { progress throws(PodSourceError) -> Data in
            var collected = Data()
            do {
                for try await chunk in response.body {
                    progress.tick()
                    guard collected.count + chunk.readableBytes <= limit else {
                        throw PodSourceError(.tooLarge, "\(shown): answer over the limit of \(limit) bytes")
                    }
                    chunk.withUnsafeReadableBytes { collected.append(contentsOf: $0) }
                }
            } catch let problem as PodSourceError {
                throw problem
            } catch {
                throw PodSourceError(.unreachable, "\(shown): answer cut short: \(ClusterHTTP.describe(error, request: nil))")
            }
            return collected
        }
    }

    /// The `message` of a Kubernetes `Status` answer, if the body is one (4 KiB read at most).
    static func statusMessage(_ response: HTTPClientResponse) async -> String? {
        guard let buffer = try? await response.body.collect(upTo: 4096) else { return nil }
        let data = Data(buffer.readableBytesView)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let message = object["message"] as? String else { return nil }
        return UserText.excerpt(message, limit: 300)
    }

    /// A URL for messages: without the query, which only repeats what the
    /// source is (and must never carry a credential).
    static func shown(_ url: String) -> String {
        UserText.excerpt(url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url, limit: 300)
    }
}
