import Foundation
import Synchronization
import SystemCalls
import SystemPackage

/// What the watcher thread shares with the rest of the process: coalesced
/// access times, removals, counters and lifecycle signals. Every lock here is
/// held only for a few dictionary operations, never across I/O.
final class Ledger: Sendable {
    struct State {
        var accesses: [String: Date] = [:]
        var removed: Set<String> = []
        /// Volumes that may have changed since the scan cache last drained
        /// them (issue 10), and whether all may have (lost signals).
        var dirty: Set<String> = []
        var everythingDirty = true
        var known: Set<String> = []
        var polled: Set<String> = []
        var watches = 0
        var eventsHandled: UInt64 = 0
        var overflows = 0
        var rescans = 0
        /// The newest lost signal (overflow, unknown watch): every volume
        /// counts as accessed then. Never cleared; it ages out like any access.
        var signalsLostAt: Date?
        /// A rescan after lost signals runs: every volume counts as accessed now.
        var recoveringLostSignals = false
        var lastEventAt: Date?
        var ready = false
        var finished = false
        var threadRunning = false
        var failure: WatcherError?
        var nextWaiterID: UInt64 = 0
        var readyWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var cancelledWaiters: Set<UInt64> = []
        var finishWaiter: CheckedContinuation<Void, Never>?
        /// Write end of the wake pipe while the thread runs; written under this
        /// lock so it is never written after the thread closed it.
        var wakeDescriptor: FileDescriptor?
    }

    let state = Mutex(State())
    let stopFlag = Atomic<Bool>(false)
    let manifestSignal: AsyncStream<Void>.Continuation

    init(manifestSignal: AsyncStream<Void>.Continuation) {
        self.manifestSignal = manifestSignal
    }

    var stopRequested: Bool { stopFlag.load(ordering: .acquiring) }

    // MARK: Volumes

    func record(_ touches: [String: Date]) {
        guard !touches.isEmpty else { return }
        state.withLock { state in
            for (volume, time) in touches where state.known.contains(volume) {
                state.dirty.insert(volume)
                if let existing = state.accesses[volume], existing >= time { continue }
                state.accesses[volume] = time
            }
        }
    }

    /// Something changed in `volume` that is no access (a watch ended).
    func markDirty(_ volume: String) {
        _ = state.withLock { $0.dirty.insert(volume) }
    }

    func addKnown(_ volume: String) {
        state.withLock { state in
            state.known.insert(volume)
            state.dirty.insert(volume)
            state.removed.remove(volume)
        }
    }

    func forget(_ volume: String) {
        state.withLock { state in
            state.dirty.insert(volume)
            state.known.remove(volume)
            state.polled.remove(volume)
            state.accesses.removeValue(forKey: volume)
            state.removed.insert(volume)
        }
    }

    func setPolled(_ volume: String, _ polled: Bool) {
        state.withLock { state in
            if polled { state.polled.insert(volume) } else { state.polled.remove(volume) }
        }
    }

    func noteEvents(_ count: Int, at time: Date) {
        guard count > 0 else { return }
        state.withLock { state in
            state.eventsHandled += UInt64(count)
            state.lastEventAt = time
        }
    }

    func noteOverflow() { state.withLock { $0.overflows += 1 } }

    func noteSignalsLost(at time: Date) {
        state.withLock { state in
            state.signalsLostAt = max(state.signalsLostAt ?? time, time)
            state.recoveringLostSignals = true
            state.everythingDirty = true
        }
    }

    func noteRescanFinished() { state.withLock { $0.recoveringLostSignals = false } }

    /// Puts back accesses and removals that were drained but not stored.
    func requeue(accesses: [String: Date], removed: Set<String>) {
        state.withLock { state in
            for (volume, time) in accesses where state.known.contains(volume) {
                if let existing = state.accesses[volume], existing >= time { continue }
                state.accesses[volume] = time
            }
            state.removed.formUnion(removed.subtracting(state.known))
        }
    }
    func noteRescan() { state.withLock { $0.rescans += 1 } }
    func publish(watches: Int) { state.withLock { $0.watches = watches } }

    // MARK: Lifecycle

    func markReady() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.ready = true
            defer { state.readyWaiters = [:] }
            return Array(state.readyWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    func waitUntilReady() async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.ready || state.finished || state.cancelledWaiters.remove(id) != nil { return true }
                    state.readyWaiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.readyWaiters.removeValue(forKey: id) { return waiter }
                state.cancelledWaiters.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }

    /// The thread is gone: wake everyone who waits for it.
    func markFinished(failure: WatcherError?) {
        let (readyWaiters, finishWaiter) = state.withLock { state in
            state.finished = true
            state.threadRunning = false
            state.failure = failure
            defer {
                state.readyWaiters = [:]
                state.finishWaiter = nil
            }
            return (Array(state.readyWaiters.values), state.finishWaiter)
        }
        for waiter in readyWaiters { waiter.resume() }
        finishWaiter?.resume()
    }

    /// Suspends until the thread finished. Not cancellable on purpose: this is
    /// the join, and the caller has already asked the thread to stop.
    func waitUntilFinished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.finished { return true }
                state.finishWaiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Asks the thread to stop: the flag for loops, a byte on the wake pipe for `poll`.
    func requestStop() {
        stopFlag.store(true, ordering: .releasing)
        wake()
    }

    /// Wakes the thread from `poll` to look at its state again.
    func wake() {
        state.withLock { state in
            guard let descriptor = state.wakeDescriptor else { return }
            _ = withUnsafeBytes(of: UInt8(1)) { try? Syscall.write(descriptor, from: $0) }
        }
    }
}
