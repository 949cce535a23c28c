import Foundation

/// A value behind a lock, for the little state shared between the accept
/// loop, connections and waiters.
final class Synchronized<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Counts open connections against `maxConnections`.
struct ConnectionLimiter: Sendable {
    private let count = Synchronized(0)
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes a slot; false when all are taken.
    func acquire() -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func release() {
        count.withLock { $0 -= 1 }
    }
}

/// Tells `waitUntilListening()` callers when the socket accepts (or when the
/// server has stopped trying).
final class ListeningSignal: Sendable {
    private enum State {
        case waiting([UInt64: CheckedContinuation<Void, Never>], nextID: UInt64)
        case signalled
    }

    private let state = Synchronized(State.waiting([:], nextID: 0))

    func signal() {
        let waiters: [CheckedContinuation<Void, Never>] = state.withLock { state in
            guard case .waiting(let waiters, _) = state else { return [] }
            state = .signalled
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    var isSignalled: Bool {
        state.withLock { if case .signalled = $0 { true } else { false } }
    }

    /// Returns once signalled, or when the calling task is cancelled.
    func wait() async {
        let id: UInt64? = state.withLock { state in
            guard case .waiting(let waiters, let nextID) = state else { return nil }
            state = .waiting(waiters, nextID: nextID + 1)
            return nextID
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow: Bool = state.withLock { state in
                    guard case .waiting(var waiters, let nextID) = state else { return true }
                    if Task.isCancelled { return true }
                    waiters[id] = continuation
                    state = .waiting(waiters, nextID: nextID)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
                guard case .waiting(var waiters, let nextID) = state else { return nil }
                let waiter = waiters.removeValue(forKey: id)
                state = .waiting(waiters, nextID: nextID)
                return waiter
            }
            waiter?.resume()
        }
    }
}
