import Foundation
import Reaper
import Synchronization
import SystemCalls
import SystemPackage
import Testing
import TestSupport

/// A tree's subtrees removed by several threads (issue 22: `--once` against
/// `rm -rf`): the same result as one thread, every stop still a stop.
@Suite("SafeRemover: subtrees shared out to threads")
struct SharedRemovalTests {
    /// `base/top`: `files` files at its root, and `subtrees` directories of
    /// `filesEach` files with one nested directory each.
    func makeTree(_ base: String, files: Int = 5, subtrees: Int, filesEach: Int) throws {
        try sh("""
            set -e
            mkdir -p \(q(base))/top && cd \(q(base))/top
            for i in $(seq 1 \(files)); do echo root-$i > r$i; done
            for d in $(seq 1 \(subtrees)); do
                mkdir -p s$d/nested && echo deep > s$d/nested/f
                (cd s$d && seq 1 \(filesEach) | xargs touch && head -c 5000 /dev/urandom > blob)
            done
            """)
    }

    func entries(_ path: String) throws -> Int {
        Int(try sh("find \(q(path)) 2>/dev/null | wc -l").trimmingCharacters(in: .whitespacesAndNewlines))!
    }

    @Test("four threads remove what one thread removes, and count it the same", arguments: [2, 4])
    func sameAsOneThread(workers: Int) throws {
        let directory = try TemporaryDirectory("shared-same")
        defer { directory.remove() }
        try makeTree(directory.appending("one"), subtrees: 8, filesEach: 200)
        try makeTree(directory.appending("many"), subtrees: 8, filesEach: 200)
        let total = try entries(directory.appending("many/top"))
        var results: [RemovalStats] = []
        for (name, threads) in [("one", 1), ("many", workers)] {
            let parent = try Syscall.openDirectory(nil, directory.appending(name))
            defer { Syscall.close(parent) }
            let remover = SafeRemover(workers: threads)
            results.append(try remover.removeTree(named: "top", in: parent, path: directory.appending(name + "/top")))
            #expect(!exists(directory.appending(name + "/top")))
        }
        #expect(results[1].filesRemoved == total, "every entry, the top included, counts once")
        #expect(results[1] == results[0])
    }

    @Test("a flock held in one subtree stops the threads removing the others: lock-held, most of the others stay, the count is what went")
    func oneStopStopsAll() throws {
        let directory = try TemporaryDirectory("shared-stop")
        defer { directory.remove() }
        try sh("mkdir -p \(q(directory.path))/top/a/held && cd \(q(directory.path))/top/a && touch one two")
        try sh("mkdir -p \(q(directory.path))/top/b && cd \(q(directory.path))/top/b && seq 1 20000 | xargs touch")
        let held = directory.appending("top/a/held")
        let holder = try Background("exec 9<\(q(held)) && flock -x -w 10 9 && exec sleep 60")
        defer { holder.stop() }
        #expect(eventually { isFlockHeld(held) })
        let before = try entries(directory.appending("top"))
        let parent = try Syscall.openDirectory(nil, directory.path)
        defer { Syscall.close(parent) }
        let remover = SafeRemover(workers: 2)
        let error = #expect(throws: RemovalError.self) {
            _ = try remover.removeTree(named: "top", in: parent, path: directory.appending("top"))
        }
        #expect(error?.code == .lockHeld, "\(String(describing: error))")
        #expect(error?.path == held)
        #expect(exists(held))
        let left = try entries(directory.appending("top"))
        #expect(error?.removed.filesRemoved == before - left, "the count is what went, from both threads")
        // Unstopped, b's thread would remove all 20,000; stopped, only what it
        // removed while a's thread reached the lock.
        #expect(try entries(directory.appending("top/b")) > 10_000)
    }

    @Test("descriptors stay within maximumOpenDirectories over all threads: four 60-deep chains, at most 8 open")
    func boundedOverThreads() throws {
        let directory = try TemporaryDirectory("shared-deep")
        defer { directory.remove() }
        try sh("cd \(q(directory.path)) && python3 -c \"import os\nos.mkdir('top')\nfor c in range(4):\n  p = os.path.join('top', 'c%d' % c)\n  for i in range(60):\n    os.makedirs(p); open(os.path.join(p, 'f'), 'w').write('x'); p = os.path.join(p, 'd')\"")
        let parent = try Syscall.openDirectory(nil, directory.path)
        defer { Syscall.close(parent) }
        let tree = directory.appending("top")
        @Sendable func openInTree() -> Int { descriptorsOpen(under: tree) }
        let peak = Mutex(0)
        var remover = SafeRemover(maximumOpenDirectories: 8, workers: 4)
        remover.afterEachRemoval = { _ in
            let open = openInTree()
            peak.withLock { $0 = max($0, open) }
        }
        let stats = try remover.removeTree(named: "top", in: parent, path: tree)
        #expect(stats.filesRemoved == 1 + 4 * 60 * 2)
        #expect(!exists(tree))
        let most = peak.withLock { $0 }
        #expect(most > 1 && most <= 8, "peak \(most) descriptors open in the tree")
    }
}
