import Foundation
import Prometheus
import ReaperCore
import SocketAPI
import TestSupport
import Testing

/// Every route and status code, over real HTTP from curl on the Unix socket.
@Suite("Socket API routes", .serialized)
struct RouteTests {
    @Test("GET /healthz: 200 with the agent's state while healthy")
    func healthy() async throws {
        try await withServer { _, socket in
            let response = try await curl(socket, "/healthz")
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "application/json")
            let health = try response.json(AgentHealth.self)
            #expect(health.healthy && health.state == "running" && health.watches == 12 && health.volumes == 3)
            #expect(health.lastReconcile == Fixture.generatedAt)
            #expect(response.text.contains(#""lastReconcileError" : null"#))
        }
    }

    @Test("GET /healthz: 503 with the state when unhealthy")
    func unhealthy() async throws {
        try await withServer(provider: FakeProvider(healthy: false)) { _, socket in
            let response = try await curl(socket, "/healthz")
            #expect(response.status == 503)
            let health = try response.json(AgentHealth.self)
            #expect(!health.healthy && health.lastReconcileError == "manifests unreadable")
        }
    }

    @Test("GET /v1/volumes: all by default; idle is verdict reap; active is keep")
    func volumes() async throws {
        try await withServer { _, socket in
            let all = try await curl(socket, "/v1/volumes")
            #expect(all.status == 200)
            let list = try all.json(VolumeList.self)
            #expect(list.volumes == Fixture.plan.volumes)
            #expect(list.generatedAt == Fixture.generatedAt)
            #expect(try await curl(socket, "/v1/volumes?state=all").json(VolumeList.self).volumes.count == 3)

            let idle = try await curl(socket, "/v1/volumes?state=idle").json(VolumeList.self)
            #expect(idle.volumes.map(\.name) == ["scratch"])
            #expect(idle.volumes.allSatisfy { $0.verdict == .reap })

            let active = try await curl(socket, "/v1/volumes?state=active").json(VolumeList.self)
            #expect(active.volumes.map(\.name) == ["cache", "data"])
            // The orphan's pod is null, as the plan contract says.
            #expect(try await curl(socket, "/v1/volumes?state=active").text.contains(#""pod" : null"#))
        }
    }

    @Test("GET /v1/volumes?state=bogus: 400 naming the value")
    func badState() async throws {
        try await withServer { _, socket in
            let response = try await curl(socket, "/v1/volumes?state=sleepy")
            #expect(response.status == 400)
            #expect(response.errorCode == "bad-request")
            #expect(response.errorMessage?.contains("sleepy") == true)
        }
    }

    @Test("GET /v1/forecast: hour buckets as JSON; a bad within is 400 with one line")
    func forecast() async throws {
        try await withServer { _, socket in
            let response = try await curl(socket, "/v1/forecast?within=3h")
            #expect(response.status == 200)
            let forecast = try response.json(Forecast.self)
            #expect(forecast == Forecast.build(from: Fixture.plan, within: 3 * 3600))
            #expect(forecast.buckets.count == 3)
            #expect(try await curl(socket, "/v1/forecast").json(Forecast.self).buckets.count == 6)
            for bad in ["soon", "10m", "30d", "-1h"] {
                let refused = try await curl(socket, "/v1/forecast?within=\(bad)")
                #expect(refused.status == 400, "\(bad)")
                #expect(refused.errorCode == "bad-request")
                #expect(refused.errorMessage?.contains(bad) == true && refused.errorMessage?.contains("\n") == false)
            }
        }
    }

    @Test("No plan yet: volume and plan routes answer 503")
    func noPlan() async throws {
        try await withServer(provider: FakeProvider(plan: nil)) { _, socket in
            for target in ["/v1/volumes", "/v1/volumes/\(Fixture.podA)", "/v1/plan"] {
                let response = try await curl(socket, target)
                #expect(response.status == 503, "\(target)")
                #expect(response.errorCode == "no-plan", "\(target)")
            }
        }
    }

    @Test("GET /v1/volumes/{podUID}: that pod's volumes; 404 when unknown")
    func podVolumes() async throws {
        try await withServer { _, socket in
            let known = try await curl(socket, "/v1/volumes/\(Fixture.podA)")
            #expect(known.status == 200)
            let list = try known.json(VolumeList.self)
            #expect(list.podUID == Fixture.podA)
            #expect(list.volumes.map(\.name) == ["scratch", "cache"])

            let unknown = try await curl(socket, "/v1/volumes/5e1f0000-0000-4000-8000-000000000099")
            #expect(unknown.status == 404)
            #expect(unknown.errorCode == "not-found")
            #expect(unknown.errorMessage?.contains("000000000099") == true)
        }
    }

    @Test("GET /v1/plan: byte for byte what --plan --json prints")
    func plan() async throws {
        try await withServer { _, socket in
            let response = try await curl(socket, "/v1/plan")
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "application/json")
            #expect(response.body == (try Fixture.plan.jsonData()))
        }
    }

    @Test("POST /v1/reconcile as uid 0: 200 with the new plan", .enabled(if: isRoot, "needs root: the peer must be uid 0"))
    func reconcileAsRoot() async throws {
        let provider = FakeProvider()
        try await withServer(provider: provider) { _, socket in
            let response = try await curl(socket, "/v1/reconcile", method: "POST")
            #expect(response.status == 200)
            let plan = try response.json(Plan.self)
            #expect(plan.generatedAt == Fixture.generatedAt.addingTimeInterval(60))
            #expect(response.body == (try plan.jsonData()))
            #expect(await provider.reconciles == 1)
        }
    }

    @Test("POST /v1/reconcile that fails: 500 with the reason", .enabled(if: isRoot, "needs root: the peer must be uid 0"))
    func reconcileFails() async throws {
        let provider = FakeProvider()
        await provider.setReconcileError(ReconcileFailed())
        try await withServer(provider: provider) { _, socket in
            let response = try await curl(socket, "/v1/reconcile", method: "POST", data: "{}")
            #expect(response.status == 500)
            #expect(response.errorCode == "reconcile-failed")
            #expect(response.errorMessage?.contains("kubelet tree vanished") == true)
        }
    }

    @Test("POST /v1/reconcile from uid 65534: 403, and nothing runs", .enabled(if: isRoot, "needs root: setpriv drops to uid 65534"))
    func reconcileAsNobody() async throws {
        let provider = FakeProvider()
        try await withServer(provider: provider) { _, socket in
            // The shipped mode 0660 (owner root) would make connect() fail with
            // EACCES for uid 65534, which is not the check under test; open the
            // socket (and its directory is 0755) so that the request reaches
            // the server and SO_PEERCRED decides.
            #expect(chmod(socket, 0o666) == 0)
            let response = try await curl(socket, "/v1/reconcile", method: "POST", user: 65534)
            #expect(response.status == 403)
            #expect(response.errorCode == "forbidden")
            #expect(response.errorMessage?.contains("65534") == true)
            #expect(await provider.reconciles == 0)
            // Reading stays open to such a peer.
            #expect(try await curl(socket, "/healthz", user: 65534).status == 200)
        }
    }

    @Test("GET /metrics: Prometheus text from the registry")
    func metrics() async throws {
        let registry = PrometheusCollectorRegistry()
        let recorder = AgentMetricsRecorder(registry: registry)
        recorder.recordPlan(Fixture.plan)
        try await withServer(registry: registry) { _, socket in
            _ = try await curl(socket, "/nowhere")
            let response = try await curl(socket, "/metrics")
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(response.text.contains(#"volume_reaper_volumes{state="idle"} 1"#))
            #expect(response.text.contains(#"volume_reaper_volumes{state="active"} 2"#))
            #expect(response.text.contains(#"volume_reaper_http_requests_total{code="404"} 1"#))
        }
    }

    @Test("Unknown paths: 404; known paths with the wrong method: 405 with Allow")
    func notFoundAndMethods() async throws {
        try await withServer { _, socket in
            for target in ["/", "/v1", "/v1/volumes/", "/v1/volumes/a/b", "/healthz/x", "/v2/plan"] {
                let response = try await curl(socket, target)
                #expect(response.status == 404, "\(target)")
                #expect(response.errorCode == "not-found", "\(target)")
            }
            let postHealth = try await curl(socket, "/healthz", method: "POST")
            #expect(postHealth.status == 405)
            #expect(postHealth.headers["allow"] == "GET")
            #expect(postHealth.errorCode == "method-not-allowed")
            let getReconcile = try await curl(socket, "/v1/reconcile")
            #expect(getReconcile.status == 405)
            #expect(getReconcile.headers["allow"] == "POST")
            let deletePlan = try await curl(socket, "/v1/plan", method: "DELETE")
            #expect(deletePlan.status == 405)
            #expect(deletePlan.headers["allow"] == "GET")
        }
    }
}
