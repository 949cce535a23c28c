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

/// Counts open connections against `maxConnections`, and per peer against
/// the per-process and per-user shares, so that one client (or one user's
/// clients) cannot hold every slot.
struct ConnectionLimiter: Sendable {
    /// Why a connection was not admitted.
    enum Refusal: Sendable, Hashable {
        case full, process, user
    }

    private struct Counts {
        var total = 0
        var byProcess: [Int32: Int] = [:]
        var byUser: [UInt32: Int] = [:]
    }

    private let counts = Synchronized(Counts())
    let limit: Int
    let perProcess: Int
    let perUser: Int

    init(limit: Int, perProcess: Int = .max, perUser: Int = .max) {
        self.limit = limit
        self.perProcess = perProcess
        self.perUser = perUser
    }

    /// Takes a slot for `peer` (unknown peers count against the total only);
    /// nil when admitted, else which limit was reached.
    func acquire(_ peer: PeerCredentials?) -> Refusal? {
        counts.withLock { counts in
            guard counts.total < limit else { return .full }
            if let peer {
                guard counts.byProcess[peer.pid, default: 0] < perProcess else { return .process }
                guard counts.byUser[peer.uid, default: 0] < perUser else { return .user }
                counts.byProcess[peer.pid, default: 0] += 1
                counts.byUser[peer.uid, default: 0] += 1
            }
            counts.total += 1
            return nil
        }
    }

    func release(_ peer: PeerCredentials?) {
        counts.withLock { counts in
            counts.total -= 1
            guard let peer else { return }
            counts.byProcess[peer.pid, default: 1] -= 1
            if counts.byProcess[peer.pid] == 0 { counts.byProcess[peer.pid] = nil }
            counts.byUser[peer.uid, default: 1] -= 1
            if counts.byUser[peer.uid] == 0 { counts.byUser[peer.uid] = nil }
        }
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
