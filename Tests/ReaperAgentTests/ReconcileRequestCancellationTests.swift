import Foundation
import Prometheus
@testable import ReaperAgent
import SocketAPI
import Synchronization
import Testing

/// Issue 21: a `POST /v1/reconcile` waits for the next cycle. Cancelled
/// without a graceful shutdown, the daemon must still answer it (the socket
/// API turns `CancellationError` into 503 `shutting-down`); before, the
/// request's continuation sat in the trigger stream and the request hung.
@Suite("Reconcile requests when the daemon is cancelled")
struct ReconcileRequestCancellationTests {
    @Test("cancelling the daemon with a queued reconcile request resumes it with an error")
    func cancelledWithQueuedRequest() async throws {
        let node = try AgentHarness("cancel-queued", pods: [])
        defer { node.remove() }
        let api = try APIServer(
            configuration: APIServerConfiguration(socketPath: node.configuration.socket), provider: node.controller,
            registry: PrometheusCollectorRegistry(), logger: testLogger
        )
        // The watcher is never run: the service waits for its first crawl,
        // as a daemon on a large node does for a while after start.
        let service = ReconcileService(
            controller: node.controller, api: api, podChanges: AsyncStream { $0.finish() }, interval: .seconds(60)
        )
        let controller = node.controller
        let first = RequestProbe(controller)
        await withTaskGroup(of: Void.self) { daemon in
            daemon.addTask { try? await service.run() }
            try? await Task.sleep(for: .milliseconds(300))
            #expect(first.answer == nil, "answered before the daemon stopped")
            daemon.cancelAll()
        }
        #expect(await first.answer(within: .seconds(5)) == "CancellationError", "the request must be answered with an error, not left waiting")
        // A request after the stop is refused at once.
        #expect(await RequestProbe(controller).answer(within: .seconds(5)) == "CancellationError")
    }
}

/// One `reconcileNow()` call and what it answered. Unstructured on purpose:
/// a request that is never answered must fail the test after a deadline, not
/// hang a task group that waits for it.
final class RequestProbe: Sendable {
    private final class Answer: Sendable {
        let value = Mutex<String?>(nil)
    }

    private let result = Answer()
    private let task: Task<Void, Never>

    init(_ controller: AgentController) {
        let result = result
        task = Task {
            do {
                _ = try await controller.reconcileNow()
                result.value.withLock { $0 = "a plan" }
            } catch {
                result.value.withLock { $0 = "\(type(of: error))" }
            }
        }
    }

    var answer: String? { result.value.withLock { $0 } }

    func answer(within limit: Duration) async -> String? {
        let deadline = ContinuousClock.now + limit
        while answer == nil, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if answer == nil { task.cancel() }
        return answer
    }
}
