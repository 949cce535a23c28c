import Foundation
import NIOCore
import NIOPosix
import SocketAPI
import TestSupport
import Testing

/// The last CI run's finding: with the process's share full, a connection that
/// arrived after the share was taken was served, and an earlier one refused,
/// because each accepted connection took its slot on its own event loop, and a
/// busy loop admitted its connections late.
@Suite("Socket API: connections are admitted in the order they arrive")
struct AdmissionOrderTests {
    @Test("with an event loop stalled, the connection past the process's share is the one refused, round after round")
    func admittedInArrivalOrder() async throws {
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        try await withServer(configure: {
            $0.maxConnectionsPerProcess = 4
            $0.requestTimeout = .seconds(120)
            $0.idleTimeout = .seconds(120)
        }) { _, socket in
            let served = try await onThread { () -> [Int] in
                var servedRounds: [Int] = []
                for round in 0..<40 {
                    // Accepted connections go to the loops in turn: one more
                    // connection every other pair of rounds shifts which loop
                    // gets which of the five.
                    if round / loops.count % 2 == 1 { try Self.waitForFreeShare(socket) }
                    // Stall one loop while the five connect, in turn each loop:
                    // connections it was given wait, the others' do not.
                    loops[round % loops.count].execute { usleep(100_000) }
                    try {
                        let share = try TricklingClientTests.openTricklers(socket, count: 4)
                        let extra = try RawClient(socket)
                        extra.send(RobustnessTests.health)
                        if try extra.readResponse().status != 503 { servedRounds.append(round) }
                        withExtendedLifetime(share) {}
                    }()
                    // The five are closed (their deinits): wait for the server to free the share.
                    try Self.waitForFreeShare(socket)
                }
                return servedRounds
            }
            #expect(served.isEmpty, "rounds where the fifth connection was served: \(served)")
        }
    }

    /// Waits until a connection from this process is served again.
    static func waitForFreeShare(_ socket: String) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let probe = try RawClient(socket)
            probe.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            if try probe.readResponse().status == 200 {
                _ = try probe.waitForClose(timeout: 5)
                return
            }
            usleep(10_000)
        }
        throw SocketFailure(description: "the process's share was not freed within 10 s")
    }
}
