import Foundation
import SocketAPI
import TestSupport
import Testing

/// Issue 12's socket findings: clients that trickle one header byte at a time
/// must not hold the connection slots, and absolute-form targets are served.
@Suite("Socket API: trickling clients and request targets", .serialized)
struct TricklingClientTests {
    /// Opens `count` connections and sends each a first header byte.
    static func openTricklers(_ socket: String, count: Int) throws -> [RawClient] {
        try (0..<count).map { _ in
            let client = try RawClient(socket)
            client.send("G")
            return client
        }
    }

    /// One more byte on each still-open connection; how many the server has closed.
    static func trickle(_ clients: [RawClient], byte: String) -> Int {
        clients.filter { !$0.send(byte) || ((try? $0.read(timeout: 0)) ?? nil) == [] }.count
    }

    @Test("clients sending a header byte every 200 ms are closed at the request deadline; /healthz answers meanwhile")
    func requestDeadline() async throws {
        try await withServer(configure: {
            $0.maxConnections = 8
            $0.maxConnectionsPerProcess = 8
            $0.requestTimeout = .seconds(1)
        }) { _, socket in
            let (closedAt, healthStatus, healthSeconds) = try await onThread { () -> (Double?, Int, Double) in
                let started = Date()
                let clients = try Self.openTricklers(socket, count: 8)
                var closedAt: Double?
                // Trickle for up to 4 s (the idle timer alone would never fire: each byte restarts it).
                for byte in "ET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaa".map(String.init) {
                    Thread.sleep(forTimeInterval: 0.2)
                    if Self.trickle(clients, byte: byte) == clients.count {
                        closedAt = Date().timeIntervalSince(started)
                        break
                    }
                }
                // Every slot is free again: another process is served at once.
                let asked = Date()
                let health = try ChildProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--unix-socket", socket, "http://localhost/healthz"])
                return (closedAt, Int(health.stdout) ?? 0, Date().timeIntervalSince(asked))
            }
            let closed = try #require(closedAt, "the trickling clients were never closed")
            #expect(closed < 2.5, "closed after \(closed) s")
            #expect(healthStatus == 200)
            // Answered, not refused nor left waiting for a slot: the status
            // says which; the bound only catches a hang (curl gives up at 10 s),
            // since a whole parallel suite on 2 cores can delay curl's start.
            #expect(healthSeconds < 9)
        }
    }

    @Test("one process cannot hold more than its share of the slots; another process is served")
    func perProcessCap() async throws {
        // Deadlines far off: on a loaded machine they must not close a
        // connection before its 503 is read, which would hide the count.
        try await withServer(configure: {
            $0.maxConnectionsPerProcess = 32
            $0.requestTimeout = .seconds(120)
            $0.idleTimeout = .seconds(120)
        }) { _, socket in
            let (refused, code, healthStatus) = try await onThread { () -> (Int, String?, Int) in
                // 512 trickling connections from this one process: 32 get a
                // slot (which 32 depends on the event loops), the rest a 503.
                let clients = try Self.openTricklers(socket, count: 512)
                var refused = 0
                var code: String?
                var unanswered = Array(clients.indices)
                let deadline = Date().addingTimeInterval(60)
                while refused < 512 - 32, Date() < deadline {
                    unanswered.removeAll { index in
                        guard let response = try? clients[index].readResponse(timeout: 0.01) else { return false }
                        if response.status == 503 { refused += 1; code = response.errorCode }
                        return true
                    }
                }
                let health = try ChildProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--unix-socket", socket, "http://localhost/healthz"])
                _ = clients
                return (refused, code, Int(health.stdout) ?? 0)
            }
            // Exactly the share is held: no more refusals come once all others are answered.
            #expect(refused == 512 - 32)
            #expect(code == "too-many-connections")
            #expect(healthStatus == 200)
        }
    }

    @Test("one user's processes share at most maxConnectionsPerUser; another user is served", .enabled(if: isRoot, "needs root to run curl as another user"))
    func perUserCap() async throws {
        try await withServer(configure: { $0.maxConnectionsPerUser = 4 }) { _, socket in
            let (refusal, otherUser) = try await onThread { () -> (HTTPResult, Int) in
                // Mode 0666 so that uid 65534 can connect and SO_PEERCRED decides.
                chmod(socket, 0o666)
                let clients = try Self.openTricklers(socket, count: 4)
                let extra = try RawClient(socket)
                extra.send(RobustnessTests.health)
                let refusal = try extra.readResponse()
                let other = try ChildProcess.run("/usr/bin/setpriv", [
                    "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                    "--max-time", "5", "--unix-socket", socket, "http://localhost/healthz",
                ])
                _ = clients
                return (refusal, Int(other.stdout) ?? 0)
            }
            #expect(refusal.status == 503)
            #expect(refusal.errorMessage?.contains("one user") == true)
            #expect(otherUser == 200)
        }
    }

    @Test("absolute-form request targets are served (RFC 9112 §3.2.2)", arguments: [
        ("GET http://localhost/healthz HTTP/1.1", 200),
        ("GET HTTP://localhost/v1/volumes?state=idle HTTP/1.1", 200),
        ("GET http://localhost HTTP/1.1", 404),
        ("GET ftp://localhost/healthz HTTP/1.1", 400),
        ("GET localhost/healthz HTTP/1.1", 400),
    ])
    func absoluteForm(_ line: String, _ status: Int) async throws {
        try await withServer { _, socket in
            let response = try await onThread { () -> HTTPResult in
                let client = try RawClient(socket)
                client.send(line + "\r\nHost: localhost\r\n\r\n")
                return try client.readResponse()
            }
            #expect(response.status == status, "\(response.text)")
        }
    }
}
