import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import SocketAPI
import TestSupport
import Testing

/// Garbage, oversized, slow and many requests, over raw sockets: the server
/// answers each with the right 4xx and keeps serving.
@Suite("Socket API robustness", .serialized)
struct RobustnessTests {
    static let health = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"

    @Test("Keep-alive: several requests, pipelined or not, on one connection")
    func keepAlive() async throws {
        try await withServer { _, socket in
            let statuses = try await onThread { () -> [Int] in
                let client = try RawClient(socket)
                var statuses: [Int] = []
                client.send(Self.health)
                statuses.append(try client.readResponse().status)
                client.send("GET /v1/plan HTTP/1.1\r\nHost: localhost\r\n\r\n" + "GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n")
                statuses.append(try client.readResponse().status)
                statuses.append(try client.readResponse().status)
                // A body on a wrong-method request is read and skipped; the connection stays usable.
                client.send("POST /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello")
                let refused = try client.readResponse()
                statuses.append(refused.status)
                client.send(Self.health)
                statuses.append(try client.readResponse().status)
                return statuses
            }
            #expect(statuses == [200, 200, 404, 405, 200])
        }
    }

    @Test("HTTP/1.0 without keep-alive: answered, then closed")
    func http10() async throws {
        try await withServer { _, socket in
            let (status, connection, closed) = try await onThread { () -> (Int, String?, Bool) in
                let client = try RawClient(socket)
                client.send("GET /healthz HTTP/1.0\r\n\r\n")
                let response = try client.readResponse()
                return (response.status, response.headers["connection"], try client.waitForClose(timeout: 5))
            }
            #expect(status == 200 && connection == "close" && closed)
        }
    }

    @Test("Garbage: 400 with a JSON error, the connection closed, and the next client served")
    func garbage() async throws {
        try await withServer { _, socket in
            for junk in ["\u{01}\u{02}NOT HTTP AT ALL\r\n\r\n", "GET /healthz HTTP/9.9\r\n\r\n", "GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"] {
                let (response, closed) = try await onThread { () -> (HTTPResult, Bool) in
                    let client = try RawClient(socket)
                    client.send(junk)
                    let response = try client.readResponse()
                    return (response, try client.waitForClose(timeout: 5))
                }
                #expect(response.status == 400, "\(junk.debugDescription)")
                #expect(response.errorCode == "bad-request")
                #expect(response.headers["connection"] == "close")
                #expect(closed)
                #expect(try await curl(socket, "/healthz").status == 200)
            }
        }
    }

    @Test("A body over maxBodyBytes: 413, by Content-Length or by chunks")
    func oversizedBody() async throws {
        try await withServer { _, socket in
            let declared = try await onThread { () -> HTTPResult in
                let client = try RawClient(socket)
                client.send("POST /v1/reconcile HTTP/1.1\r\nHost: localhost\r\nContent-Length: 70000\r\n\r\n")
                return try client.readResponse()
            }
            #expect(declared.status == 413)
            #expect(declared.errorCode == "payload-too-large")

            let chunked = try await onThread { () -> HTTPResult in
                let client = try RawClient(socket)
                client.send("POST /v1/reconcile HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
                let chunk = String(repeating: "x", count: 16 * 1024)
                for _ in 0..<5 {
                    guard client.send(String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n") else { break }
                }
                return try client.readResponse()
            }
            #expect(chunked.status == 413)

            // curl with a real oversized body (it waits for 100-continue and gets 413 instead).
            let big = String(repeating: "y", count: 100 * 1024)
            let viaCurl = try await curl(socket, "/v1/reconcile", method: "POST", data: big)
            #expect(viaCurl.status == 413)
            #expect(try await curl(socket, "/healthz").status == 200)
        }
    }

    @Test("Headers over maxHeaderBytes: 431, and the server keeps serving")
    func hugeHeaders() async throws {
        try await withServer { _, socket in
            let response = try await onThread { () -> HTTPResult in
                let client = try RawClient(socket)
                let filler = String(repeating: "a", count: 20 * 1024)
                client.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Filler: \(filler)\r\n\r\n")
                return try client.readResponse()
            }
            #expect(response.status == 431)
            #expect(response.errorCode == "headers-too-large")
            // Many small headers add up too.
            let many = try await onThread { () -> HTTPResult in
                let client = try RawClient(socket)
                var request = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                for index in 0..<1000 { request += "X-H\(index): 0123456789\r\n" }  // ~20 KB as sent
                client.send(request + "\r\n")
                return try client.readResponse()
            }
            #expect(many.status == 431)
            #expect(try await curl(socket, "/healthz").status == 200)
        }
    }

    @Test("Idle and slow connections are closed after idleTimeout")
    func idleTimeout() async throws {
        try await withServer(configure: { $0.idleTimeout = .seconds(1) }) { _, socket in
            let (silentClosed, slowClosed, keptClosed) = try await onThread { () -> (Bool, Bool, Bool) in
                let silent = try RawClient(socket)
                let slow = try RawClient(socket)
                slow.send("GET /healthz HTTP/1.1\r\nHost: loc")
                let kept = try RawClient(socket)
                kept.send(Self.health)
                _ = try kept.readResponse()
                return (
                    try silent.waitForClose(timeout: 5), try slow.waitForClose(timeout: 5), try kept.waitForClose(timeout: 5)
                )
            }
            #expect(silentClosed, "a connection that never sends is closed")
            #expect(slowClosed, "a request that stalls is closed")
            #expect(keptClosed, "an idle keep-alive connection is closed")
            #expect(try await curl(socket, "/healthz").status == 200)
        }
    }

    @Test("200 concurrent clients are all served")
    func concurrentClients() async throws {
        // One test process stands for 200 clients here: lift the per-process share.
        try await withServer(configure: { $0.maxConnectionsPerProcess = 200 }) { _, socket in
            let count = 200
            // Four threads each open 50 connections, then all 200 send and read:
            // every connection is open at the same time.
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await onThread { () -> [Int] in
                            let clients = try (0..<count / 4).map { _ in try RawClient(socket) }
                            for client in clients { client.send("GET /v1/volumes?state=idle HTTP/1.1\r\nHost: localhost\r\n\r\n") }
                            return try clients.map { try $0.readResponse(timeout: 30).status }
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(statuses.count == count)
            #expect(statuses.allSatisfy { $0 == 200 })
        }
    }

    @Test("Connections past maxConnections get 503; freed slots are reused")
    func connectionLimit() async throws {
        try await withServer(configure: { $0.maxConnections = 2 }) { _, socket in
            let (first, refused, after) = try await onThread { () -> (Int, HTTPResult, Int) in
                var holders = try (0..<2).map { _ in try RawClient(socket) }
                holders[0].send(Self.health)
                let first = try holders[0].readResponse().status
                let extra = try RawClient(socket)
                extra.send(Self.health)
                let refused = try extra.readResponse()
                holders.removeAll()
                Thread.sleep(forTimeInterval: 0.3)
                let again = try RawClient(socket)
                again.send(Self.health)
                return (first, refused, try again.readResponse().status)
            }
            #expect(first == 200)
            #expect(refused.status == 503)
            #expect(refused.errorCode == "too-many-connections")
            #expect(after == 200)
        }
    }

    @Test(
        "A slow answer outlives idleTimeout, and graceful shutdown lets it finish",
        .enabled(if: isRoot, "needs root: the peer must be uid 0 to reconcile")
    )
    func slowAnswer() async throws {
        let provider = FakeProvider()
        await provider.setReconcileDelay(.milliseconds(1500))
        let directory = try SocketDirectory()
        defer { directory.remove() }
        let path = directory.socketPath
        let server = try APIServer(
            configuration: APIServerConfiguration(socketPath: path, idleTimeout: .milliseconds(500)), provider: provider,
            registry: PrometheusCollectorRegistry(), logger: quietLogger
        )
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: server)], logger: quietLogger)
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serviceGroup.run() }
            await server.waitUntilListening()
            // The reconcile takes three idle timeouts: the server is working, not idle.
            let first = try await onThread { () -> HTTPResult in
                let client = try RawClient(path)
                client.send("POST /v1/reconcile HTTP/1.1\r\nHost: localhost\r\n\r\n")
                return try client.readResponse()
            }
            #expect(first.status == 200)

            // Shut down while a reconcile is being answered: the answer still arrives, then the connection closes.
            let client = try await onThread { try RawClient(path) }
            let answer = Synchronized<HTTPResult?>(nil)
            group.addTask {
                let response = try await onThread { () -> HTTPResult in
                    client.send("POST /v1/reconcile HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    return try client.readResponse()
                }
                answer.set(response)
            }
            while await provider.reconciles < 2 { try await Task.sleep(for: .milliseconds(20)) }
            await serviceGroup.triggerGracefulShutdown()
            try await group.waitForAll()
            #expect(answer.get()?.status == 200)
            #expect(answer.get()?.headers["connection"] == "close")
            #expect(try await onThread { try client.waitForClose(timeout: 5) })
        }
        #expect(fileMode(path) == nil)
    }
}
