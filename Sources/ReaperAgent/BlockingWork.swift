import Dispatch

/// Runs blocking file-system work (tree walks, deletions, SQLite) on a
/// dedicated serial queue, so it never occupies a thread of Swift's
/// cooperative pool, and awaits the result.
public struct BlockingWork: Sendable {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try work() })
            }
        }
    }
}
