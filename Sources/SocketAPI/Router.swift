import Foundation
import NIOCore
import NIOHTTP1
import ReaperCore

/// The socket API's routes (design §6).
enum Route: Sendable, Hashable {
    case health
    /// Liveness (issue 19): 200 while the process and its cycles go on, even
    /// with the API server unreachable; a kubelet probe restarts on 503.
    case live
    /// Readiness: 200 while the agent judges by a synced pod view.
    case ready
    case volumes
    case podVolumes(String)
    case plan
    case forecast
    case reconcile
    case metrics

    /// The one method each route answers.
    var method: HTTPMethod {
        switch self {
        case .reconcile: .POST
        default: .GET
        }
    }

    /// The route for a (percent-decoded) path; nil for unknown paths.
    init?(path: String) {
        switch path {
        case "/healthz": self = .health
        case "/livez": self = .live
        case "/readyz": self = .ready
        case "/v1/volumes": self = .volumes
        case "/v1/plan": self = .plan
        case "/v1/forecast": self = .forecast
        case "/v1/reconcile": self = .reconcile
        case "/metrics": self = .metrics
        default:
            let prefix = "/v1/volumes/"
            guard path.hasPrefix(prefix) else { return nil }
            let uid = String(path.dropFirst(prefix.count))
            guard !uid.isEmpty, !uid.contains("/") else { return nil }
            self = .podVolumes(uid)
        }
    }
}

/// A request as the router needs it.
struct APIRequest: Sendable {
    var method: HTTPMethod
    var uri: String
    var peer: PeerCredentials?
}

/// Turns requests into answers through the provider.
struct RequestHandler: Sendable {
    let provider: any AgentAPIProvider
    let recorder: AgentMetricsRecorder
    /// The metrics listener: only `/metrics` and the health paths exist.
    var scrapeOnly = false

    /// What the metrics listener serves: read-only, and what kubelet probes
    /// and Prometheus need.
    static let scrapeRoutes: Set<Route> = [.metrics, .health, .live, .ready]

    func respond(to request: APIRequest) async -> APIResponse {
        guard let target = Self.target(of: request.uri) else {
            return .error(.badRequest, code: "bad-request", message: "malformed request target '\(UserText.excerpt(request.uri))'")
        }
        guard let route = Route(path: target.path), !scrapeOnly || Self.scrapeRoutes.contains(route) else {
            return .error(.notFound, code: "not-found", message: "no such path: \(UserText.excerpt(target.path))")
        }
        guard request.method == route.method else {
            var response = APIResponse.error(
                .methodNotAllowed, code: "method-not-allowed",
                message: "\(target.path) answers \(route.method.rawValue) only, not \(UserText.excerpt(request.method.rawValue))"
            )
            response.extraHeaders.append(("Allow", route.method.rawValue))
            return response
        }
        switch route {
        case .health:
            let health = await provider.health()
            return .json(health, status: health.healthy ? .ok : .serviceUnavailable)

        case .live, .ready:
            let health = await provider.health()
            // An agent that computes no probes (a test double) is judged by `healthy`.
            let probe = (route == .live ? health.live : health.ready)
                ?? ProbeResult(checks: [ProbeCheck("healthy", ok: health.healthy, message: health.state)])
            return .json(probe, status: probe.ok ? .ok : .serviceUnavailable)

        case .volumes:
            let stateText = target.queryItems?.first(where: { $0.name == "state" })?.value ?? "all"
            guard let filter = VolumeStateFilter(rawValue: stateText) else {
                return .error(
                    .badRequest, code: "bad-request",
                    message: "unknown state '\(UserText.excerpt(stateText))': use idle, active or all"
                )
            }
            guard let plan = await provider.currentPlan() else { return Self.noPlan }
            return .json(VolumeList(generatedAt: plan.generatedAt, volumes: plan.volumes.filter(filter.includes)))

        case .podVolumes(let uid):
            guard let plan = await provider.currentPlan() else { return Self.noPlan }
            let volumes = plan.volumes.filter { $0.podUID == uid }
            guard !volumes.isEmpty else {
                return .error(.notFound, code: "not-found", message: "no volumes of pod \(UserText.excerpt(uid)) in the current plan")
            }
            return .json(VolumeList(generatedAt: plan.generatedAt, podUID: uid, volumes: volumes))

        case .plan:
            guard let plan = await provider.currentPlan() else { return Self.noPlan }
            return Self.planDocument(plan)

        case .forecast:
            let withinText = target.queryItems?.first(where: { $0.name == "within" })?.value ?? "6h"
            guard let within = DurationText.parse(withinText), within >= 3600, within <= 7 * 86400 else {
                return .error(
                    .badRequest, code: "bad-request",
                    message: "within '\(UserText.excerpt(withinText))' is not a duration from 1h to 7d (e.g. 6h)"
                )
            }
            guard let plan = await provider.currentPlan() else { return Self.noPlan }
            return .json(Forecast.build(from: plan, within: within))

        case .reconcile:
            guard let peer = request.peer else {
                return .error(.forbidden, code: "forbidden", message: "reconcile needs uid 0; the peer's credentials are unknown")
            }
            guard peer.uid == 0 else {
                return .error(.forbidden, code: "forbidden", message: "reconcile needs uid 0; the peer is uid \(peer.uid)")
            }
            do {
                return Self.planDocument(try await provider.reconcileNow())
            } catch is CancellationError {
                return .error(.serviceUnavailable, code: "shutting-down", message: "the agent is stopping")
            } catch let unavailable as ReconcileUnavailable {
                return .error(.serviceUnavailable, code: unavailable.code, message: unavailable.message)
            } catch {
                return .error(.internalServerError, code: "reconcile-failed", message: "reconcile failed: \(error)")
            }

        case .metrics:
            var bytes: [UInt8] = []
            recorder.emit(into: &bytes)
            return APIResponse(status: .ok, contentType: APIResponse.prometheusType, body: ByteBuffer(bytes: bytes))
        }
    }

    /// The path and query of a request target in origin form (`/healthz`) or
    /// absolute form (`http://localhost/healthz`, which RFC 9112 §3.2.2 says
    /// a server must accept; its authority is ignored, as a Unix socket has
    /// one host). nil for anything else.
    static func target(of uri: String) -> URLComponents? {
        if uri.hasPrefix("/") { return URLComponents(string: uri) }
        guard let absolute = URLComponents(string: uri), let scheme = absolute.scheme?.lowercased(),
              scheme == "http" || scheme == "https", absolute.host != nil else { return nil }
        var origin = URLComponents()
        origin.percentEncodedPath = absolute.percentEncodedPath.isEmpty ? "/" : absolute.percentEncodedPath
        origin.percentEncodedQuery = absolute.percentEncodedQuery
        return origin
    }

    static let noPlan = APIResponse.error(
        .serviceUnavailable, code: "no-plan", message: "no plan yet: the first reconcile has not finished"
    )

    /// Exactly what `volume-reaper --plan --json` prints.
    static func planDocument(_ plan: Plan) -> APIResponse {
        do {
            return .raw(try plan.jsonData())
        } catch {
            return .error(.internalServerError, code: "internal", message: "cannot encode the plan: \(error)")
        }
    }
}
