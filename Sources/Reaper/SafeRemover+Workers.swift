import Dispatch
import NodeDiscovery
import ReaperCore
import Synchronization
import SystemCalls
import SystemPackage

// Sharing a tree's subtrees out to worker threads. `rm -rf` removes on one
// thread; the per-file checks (a statx, and for a regular file its lease)
// cost more than the unlink, so on a node with a free core a big volume is
// removed sooner by two threads than by one, each holding every invariant of
// `SafeRemover`. Only the top directory's subdirectories are shared out:
// each is a whole subtree, removed depth first by one thread, and the top
// directory itself is removed after all of them, by the caller's thread.
extension SafeRemover {
    /// The walk's share of the CPUs (`VolumeScanner.defaultWorkers`): up to
    /// four, and no more than the CPUs this process may run on.
    public static let defaultWorkers = VolumeScanner.defaultWorkers

    /// Removes the subtrees `names` of the open directory `parent` on up to
    /// `workers` threads, and empties `names`. The first error stops every
    /// thread and is the one thrown; `stats` then counts what all removed.
    /// With too few names or descriptors to share, leaves them to the caller.
    func removeSharedOut(
        _ names: inout [FileName], in parent: FileDescriptor, path: String, tree: Tree, stats: inout RemovalStats
    ) throws(RemovalError) {
        // The caller holds `parent` open; each thread gets an equal part of
        // the rest of the descriptor budget, at least two (a directory and
        // its parent reopened through `..`).
        let threads = min(workers, names.count, (maximumOpenDirectories - 1) / 2)
        guard threads > 1 else { return }
        let openLimit = (maximumOpenDirectories - 1) / threads
        let subtrees = names
        names = []
        let next = Atomic(0)
        let outcome = Mutex((stats: RemovalStats(), error: RemovalError?.none))
        // On dispatch's threads, never Swift's cooperative ones: the caller
        // is already off the pool (`BlockingWork`), and so are these.
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            var removed = RemovalStats()
            do throws(RemovalError) {
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < subtrees.count else { break }
                    let name = subtrees[index]
                    let subtreePath = path + "/" + name.description
                    try tree.run.checkNotStopped(path: { subtreePath })
                    let status = try lookAtSubdirectory(name, in: parent, tree: tree, path: { subtreePath })
                    try removeDirectory(
                        name, in: parent, path: subtreePath, status: status, tree: tree, openLimit: openLimit,
                        sharesSubtrees: false, stats: &removed
                    )
                }
            } catch {
                // Only the first thread to stop reports: the others stopped
                // because of it (or met something after it).
                if tree.run.stop() { outcome.withLock { $0.error = error } }
            }
            outcome.withLock { $0.stats.add(removed) }
        }
        let (removed, error) = outcome.withLock { ($0.stats, $0.error) }
        stats.add(removed)
        if let error { throw error }
    }
}

/// What the threads of one removal share: the running count of entries
/// removed, and whether one of them has stopped.
final class RemovalRun: Sendable {
    private let removed = Atomic(0)
    private let stopped = Atomic(false)

    /// Counts one entry removed; the count over all threads so far.
    func entryRemoved() -> Int {
        removed.add(1, ordering: .relaxed).newValue
    }

    /// Signals every thread to stop; true for the first caller only, whose
    /// error is the one reported.
    func stop() -> Bool {
        stopped.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    }

    /// Throws when another thread has stopped: what it met is reported, and
    /// this thread removes nothing more.
    func checkNotStopped(path: () -> String) throws(RemovalError) {
        guard stopped.load(ordering: .relaxed) else { return }
        throw RemovalError(.changedDuringRemoval, path: path(), detail: "stopped: another thread of this removal stopped")
    }
}
