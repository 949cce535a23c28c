import Dispatch

/// The one way blocking work (file and directory I/O, tree walks, deletions,
/// SQLite, waiting for a file to settle or a child process to end) leaves
/// Swift's cooperative pool, the role `NIOThreadPool` plays in NIO: the pool
/// has as many threads as cores (two on a small node), and one blocked
/// thread there stalls `/healthz`, timers and every other task.
///
/// Each instance is a serial queue: work submitted to one runs in order, one
/// item at a time, on a dispatch thread outside the cooperative pool. A
/// component that blocks owns one and offers only `async` methods that hop
/// through it.
public struct BlockingWork: Sendable {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Runs `work` on the queue and awaits its result.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try work() })
            }
        }
    }

    /// Runs `work`, which cannot fail, on the queue and awaits its result.
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: work())
            }
        }
    }
}
