import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Testing
import TestSupport
#if canImport(ServiceLifecycleTestKit)
import ServiceLifecycleTestKit
#endif
@testable import VolumeWatcher

@Suite("Volume watcher on real inotify", .timeLimit(.minutes(2)))
struct WatcherTests {
    @Test("waitUntilReady returns once every watch of the initial crawl is set")
    func readyAfterEveryWatch() async throws {
        let tree = try PodTree("ready")
        defer { tree.remove() }
        let fifty = (0..<50).map { "d\($0)" }
        try tree.makeVolume(podA, "one", directories: fifty)
        try tree.makeVolume(podA, "two", directories: fifty)
        // Not a pod directory: never followed.
        try FileManager.default.createDirectory(atPath: tree.pods + "/not-a-pod/volumes/x/y", withIntermediateDirectories: true)
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            let status = watcher.status
            #expect(status.ready)
            // pods, pod, volumes/, plugin, and 2 x (root + 50 directories).
            #expect(status.watches == 4 + 2 * 51)
            #expect(status.watchedVolumes == 2)
            #expect(status.polledVolumes == 0)
            #expect(watcher.knownVolumes == [tree.volume(podA, "one"), tree.volume(podA, "two")])
        }
    }

    @Test("a read-only cat (mtime unchanged) is an access; listing directories is not")
    func readOnlyAccess() async throws {
        let tree = try PodTree("cat")
        defer { tree.remove() }
        let read = try tree.makeVolume(podA, "read", directories: ["deep/er"])
        let listed = try tree.makeVolume(podA, "listed", directories: ["a", "b"])
        let configHashVolume = try tree.makeVolume(staticPod, "static")
        let file = read + "/deep/er/data"
        let before = try modificationTime(file)
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            #expect(watcher.knownVolumes.contains(configHashVolume))
            #expect(watcher.drainAccesses().accesses.isEmpty)
            // Discovery, the reaper's lock checks and `ls` open every directory.
            try shell("ls -laR '\(tree.root)' > /dev/null && find '\(tree.root)' -type d > /dev/null")
            try shell("cat '\(file)' > /dev/null")
            var log = DrainLog()
            #expect(await log.waitForAccess(read, on: watcher))
            // Events are handled in order: the listing came first and counted for nothing.
            #expect(log.accesses[listed] == nil)
            #expect(log.accesses[configHashVolume] == nil)
            #expect(try modificationTime(file) == before)
        }
    }

    @Test("pods, volumes and nested directories created after start are watched")
    func createdAfterStart() async throws {
        let tree = try PodTree("create")
        defer { tree.remove() }
        let sentinel = try tree.makeVolume(podB, "sentinel")
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            let fresh = tree.volume(podA, "fresh")
            try shell("mkdir -p '\(fresh)/a/b/c' && echo x > '\(fresh)/a/b/c/f'")
            #expect(await eventually { watcher.knownVolumes.contains(fresh) && watcher.watchDescriptor(for: fresh + "/a/b/c") != nil })
            var log = DrainLog()
            #expect(await log.waitForAccess(fresh, on: watcher), "a volume that appears is in use")

            // Another volume in the same pod, another plugin, created quickly.
            let second = tree.volume(podA, "second", plugin: "kubernetes.io~configmap")
            try shell("mkdir -p '\(second)/x/y' && echo y > '\(second)/x/y/g'")
            #expect(await eventually { watcher.knownVolumes.contains(second) && watcher.watchDescriptor(for: second + "/x/y") != nil })

            // Everything about creation handled; now a read deep in each new tree.
            #expect(try await barrier(watcher, sentinelVolume: sentinel))
            try shell("cat '\(fresh)/a/b/c/f' '\(second)/x/y/g' > /dev/null")
            log = DrainLog()
            #expect(await log.waitForAccess(fresh, on: watcher))
            #expect(await log.waitForAccess(second, on: watcher))
        }
    }

    @Test("a directory without subdirectories at the crawl is watched unlisted; one made in it later is watched too")
    func subdirectoryInCrawledLeaf() async throws {
        let tree = try PodTree("leaf")
        defer { tree.remove() }
        // `leaf` and `other/leaf` have files but no subdirectory: the crawl watches them without listing them.
        let volume = try tree.makeVolume(podA, "v", directories: ["leaf", "other/leaf"])
        let sentinel = try tree.makeVolume(podB, "sentinel")
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            #expect(watcher.watchDescriptor(for: volume + "/leaf") != nil)
            #expect(watcher.watchDescriptor(for: volume + "/other/leaf") != nil)
            // pods, 2 x (pod, volumes/, plugin), v with leaf, other and other/leaf, sentinel.
            #expect(watcher.status.watches == 1 + 2 * 3 + 4 + 1)
            try shell("mkdir -p '\(volume)/leaf/new/deeper' && echo x > '\(volume)/leaf/new/deeper/f'")
            #expect(await eventually { watcher.watchDescriptor(for: volume + "/leaf/new/deeper") != nil })
            #expect(try await barrier(watcher, sentinelVolume: sentinel))
            try shell("cat '\(volume)/leaf/new/deeper/f' > /dev/null")
            var log = DrainLog()
            #expect(await log.waitForAccess(volume, on: watcher))
        }
    }

    @Test("a deleted volume and a deleted pod are reported as removed")
    func deletedVolume() async throws {
        let tree = try PodTree("delete")
        defer { tree.remove() }
        let doomed = try tree.makeVolume(podA, "doomed", directories: ["x/y", "z"])
        let kept = try tree.makeVolume(podA, "kept")
        let podBVolumes = [try tree.makeVolume(podB, "b1", directories: ["q"]), try tree.makeVolume(podB, "b2")]
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            try shell("rm -rf '\(doomed)'")
            var log = DrainLog()
            #expect(await eventually {
                log.take(watcher)
                return log.removed.contains(doomed)
            })
            #expect(!watcher.knownVolumes.contains(doomed))
            #expect(watcher.knownVolumes.contains(kept))
            #expect(log.accesses[doomed] == nil)

            try shell("rm -rf '\(tree.pods)/\(podB)'")
            #expect(await eventually {
                log.take(watcher)
                return log.removed.isSuperset(of: podBVolumes)
            })
            #expect(watcher.knownVolumes == [kept])
            #expect(!log.removed.contains(kept))
            // Watches of the deleted trees are gone: pods, pod A, volumes/, plugin, kept.
            #expect(await eventually { watcher.status.watches == 5 })
        }
    }

    @Test("symlinks in a volume are not followed")
    func symlinksNotFollowed() async throws {
        let tree = try PodTree("symlink")
        defer { tree.remove() }
        let volume = try tree.makeVolume(podA, "links")
        let sentinel = try tree.makeVolume(podB, "sentinel")
        let outside = tree.directory.appending("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: volume + "/escape", withDestinationPath: outside)
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            #expect(watcher.watchDescriptor(for: volume + "/escape") == nil)
            try shell("echo x > '\(outside)/file'")
            var log = DrainLog()
            try shell("echo x >> '\(sentinel)/data'")
            #expect(await log.waitForAccess(sentinel, on: watcher))
            #expect(log.accesses[volume] == nil)
        }
    }
}

@Suite("Lost signals: overflow, unknown watches, the watch limit", .timeLimit(.minutes(2)))
struct LostSignalTests {
    @Test("the parser reads kernel-layout records, padded names included")
    func parser() {
        let records = [
            InotifyEvent(wd: 3, mask: InotifyMask.open, cookie: 0, name: "file.txt"),
            InotifyEvent(wd: -1, mask: InotifyMask.queueOverflow),
            InotifyEvent(wd: 7, mask: InotifyMask.movedTo | InotifyMask.isDirectory, cookie: 42, name: "dir"),
        ]
        let bytes = records.flatMap(\.encoded)
        #expect(bytes.count % 4 == 0)
        let parsed = bytes.withUnsafeBytes { VolumeWatcher.parseEvents($0) }
        #expect(parsed == records)
        // A truncated trailing record is dropped, not misread.
        let truncated = Array(bytes.dropLast(3))
        #expect(truncated.withUnsafeBytes { VolumeWatcher.parseEvents($0) } == Array(records.prefix(2)))
    }

    @Test("IN_Q_OVERFLOW through the parser: rescan, and every known volume counts as accessed now")
    func overflow() async throws {
        let tree = try PodTree("overflow")
        defer { tree.remove() }
        try tree.makeVolume(podA, "one", directories: ["a/b"])
        try tree.makeVolume(podA, "two")
        let sentinel = try tree.makeVolume(podB, "three")
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            #expect(try await barrier(watcher, sentinelVolume: sentinel))
            let watchesBefore = watcher.status.watches
            let known = watcher.knownVolumes
            #expect(known.count == 3)

            // A volume created right before the overflow is found by the rescan at the latest.
            let late = tree.volume(podB, "late")
            try FileManager.default.createDirectory(atPath: late + "/inner", withIntermediateDirectories: true)
            let record = InotifyEvent(wd: -1, mask: InotifyMask.queueOverflow).encoded
            let events = record.withUnsafeBytes { VolumeWatcher.parseEvents($0) }
            #expect(events.count == 1 && events[0].wd == -1 && events[0].mask & InotifyMask.queueOverflow != 0)
            let start = Date()
            watcher.handle(events)

            let drain = watcher.drainAccesses()
            let status = watcher.status
            #expect(status.overflows == 1)
            #expect(status.rescans >= 1)
            #expect(watcher.knownVolumes == known.union([late]))
            #expect(Set(drain.accesses.keys) == watcher.knownVolumes)
            #expect(drain.accesses.values.allSatisfy { $0 >= start })
            #expect(watcher.watchDescriptor(for: late + "/inner") != nil)
            #expect(status.watches == watchesBefore + 2)
        }
    }

    @Test("a lost signal reaches readers when its record is handled, before the rescan; 'now' while the rescan runs")
    func lostSignalVisibleBeforeRescan() throws {
        let tree = try PodTree("lost-visible")
        defer { tree.remove() }
        try tree.makeVolume(podA, "one")
        let (_, continuation) = AsyncStream<Void>.makeStream(of: Void.self)
        let ledger = Ledger(manifestSignal: continuation)
        let engine = WatchEngine(
            kubeletRoot: tree.root, manifestsPath: nil, options: WatcherOptions(), logger: LogRecorder().logger, ledger: ledger, clock: { Date() }
        )
        let lostAt = Date(timeIntervalSinceNow: -5)
        // The record asks for a rescan; nothing has been walked yet.
        #expect(engine.handle(InotifyEvent(wd: -1, mask: InotifyMask.queueOverflow), at: lostAt))
        #expect(ledger.state.withLock { $0.signalsLostAt } == lostAt)
        #expect(ledger.state.withLock { $0.recoveringLostSignals })
        engine.recoverFromLostSignals()
        #expect(!ledger.state.withLock { $0.recoveringLostSignals })
        #expect(ledger.state.withLock { $0.signalsLostAt } == lostAt)
    }

    @Test("after an overflow every path, known or not, counts as accessed at the overflow")
    func lostSignalsAccess() async throws {
        let tree = try PodTree("lost-access")
        defer { tree.remove() }
        try tree.makeVolume(podA, "one")
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            #expect(watcher.lostSignalsAccess(now: Date()) == nil)
            let start = Date()
            watcher.handle([InotifyEvent(wd: -1, mask: InotifyMask.queueOverflow)])
            let access = try #require(watcher.lostSignalsAccess(now: .distantPast))
            #expect(access >= start)
            // Drains do not clear it: it ages out like any access.
            _ = watcher.drainAccesses()
            #expect(watcher.lostSignalsAccess(now: .distantPast) == access)
        }
    }

    @Test("an event for an unknown watch descriptor triggers a rescan and marks every volume accessed")
    func unknownWatch() async throws {
        let tree = try PodTree("unknown")
        defer { tree.remove() }
        try tree.makeVolume(podA, "one")
        try tree.makeVolume(podA, "two", directories: ["x"])
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            _ = watcher.drainAccesses()
            let rescans = watcher.status.rescans
            let record = InotifyEvent(wd: 999_999, mask: InotifyMask.modify, name: "f").encoded
            watcher.handle(record.withUnsafeBytes { VolumeWatcher.parseEvents($0) })
            #expect(watcher.status.rescans == rescans + 1)
            #expect(watcher.status.overflows == 0)
            #expect(Set(watcher.drainAccesses().accesses.keys) == watcher.knownVolumes)
            // IN_IGNORED for a watch we do not know is the end of an old watch, not a lost signal.
            watcher.handle([InotifyEvent(wd: 999_998, mask: InotifyMask.ignored)])
            #expect(watcher.status.rescans == rescans + 1)
        }
    }

    @Test("over the watch budget, volumes are polled for mtimes, with one warning naming max_user_watches")
    func watchBudget() async throws {
        let tree = try PodTree("budget")
        defer { tree.remove() }
        let first = try tree.makeVolume(podA, "first", directories: ["s1/s2", "t"])
        let second = try tree.makeVolume(podA, "second", directories: ["u/v"])
        let third = try tree.makeVolume(podA, "third")
        let recorder = LogRecorder()
        let options = WatcherOptions(maxWatches: 5, pollInterval: .milliseconds(200))
        let watcher = makeWatcher(tree, options: options, logger: recorder.logger)
        try await withRunningWatcher(watcher) { watcher in
            // pods, pod, volumes/, plugin, and the first volume's root: then the budget is spent.
            let status = watcher.status
            #expect(status.watches == 5)
            #expect(status.polledVolumes == 3)
            #expect(watcher.knownVolumes == [first, second, third])

            // A write deep in a polled volume, mtime-visible, is seen within a few poll intervals.
            try shell("echo more >> '\(second)/u/v/data'")
            var log = DrainLog()
            #expect(await log.waitForAccess(second, on: watcher))
            try shell("echo new > '\(first)/s1/s2/new'")
            #expect(await log.waitForAccess(first, on: watcher))
            // A new volume in the same budget is polled too, and the rest keeps working.
            let fourth = try tree.makeVolume(podA, "fourth")
            #expect(await eventually { watcher.knownVolumes.contains(fourth) })
            #expect(await eventually { watcher.status.polledVolumes == 4 })
            // Several poll ticks and coverage retries later: still one warning.
            try await Task.sleep(for: .milliseconds(600))
            #expect(recorder.count(level: .warning, containing: "max_user_watches") == 1)
        }
    }
}

@Suite("Mounts and manifests", .timeLimit(.minutes(2)))
struct MountAndManifestTests {
    @Test(
        "a tmpfs mounted on a watched volume directory after start is watched",
        .enabled(if: isRoot, "mounting a tmpfs needs root (CAP_SYS_ADMIN); run the tests as root")
    )
    func tmpfsMountedLater() async throws {
        let tree = try PodTree("tmpfs")
        defer { tree.remove() }
        let volume = tree.volume(podA, "secret", plugin: "kubernetes.io~secret")
        try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
        let watcher = makeWatcher(tree)
        try await withRunningWatcher(watcher) { watcher in
            let before = try #require(watcher.watchDescriptor(for: volume))
            try shell("mount -t tmpfs -o size=1m tmpfs '\(volume)'")
            defer { _ = try? ChildProcess.shell("umount '\(volume)' 2>/dev/null") }
            #expect(await eventually { watcher.watchDescriptor(for: volume).map { $0 != before } ?? false })
            _ = watcher.drainAccesses()
            try shell("mkdir -p '\(volume)/..data' && echo token > '\(volume)/..data/token'")
            var log = DrainLog()
            #expect(await log.waitForAccess(volume, on: watcher))
            #expect(await eventually { watcher.watchDescriptor(for: volume + "/..data") != nil })

            // Unmounted again: the directory below is watched as before.
            try shell("umount '\(volume)'")
            #expect(await eventually { watcher.watchDescriptor(for: volume) == before })
            _ = watcher.drainAccesses()
            try shell("echo x > '\(volume)/after'")
            log = DrainLog()
            #expect(await log.waitForAccess(volume, on: watcher))
            #expect(watcher.knownVolumes == [volume])
        }
    }

    @Test("changes in the manifests directory are signalled")
    func manifestDirectory() async throws {
        let tree = try PodTree("manifests")
        defer { tree.remove() }
        try FileManager.default.createDirectory(atPath: tree.manifests, withIntermediateDirectories: true)
        let watcher = makeWatcher(tree, manifests: tree.manifests)
        try await withRunningWatcher(watcher) { watcher in
            let signals = Counter()
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in watcher.manifestChanges { signals.increment() }
                }
                _ = try? shell("echo '{}' > '\(tree.manifests)/pods.json.tmp' && mv '\(tree.manifests)/pods.json.tmp' '\(tree.manifests)/pods.json'")
                #expect(await eventually { signals.current >= 1 })
                let seen = signals.current
                _ = try? shell("rm '\(tree.manifests)/pods.json'")
                #expect(await eventually { signals.current > seen })
                group.cancelAll()
            }
        }
    }

    @Test("a manifests file is watched through its directory")
    func manifestFile() async throws {
        let tree = try PodTree("manifest-file")
        defer { tree.remove() }
        try FileManager.default.createDirectory(atPath: tree.manifests, withIntermediateDirectories: true)
        let file = tree.manifests + "/pods.yaml"
        try Data("kind: List\n".utf8).write(to: URL(fileURLWithPath: file))
        let watcher = makeWatcher(tree, manifests: file)
        try await withRunningWatcher(watcher) { watcher in
            let signals = Counter()
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in watcher.manifestChanges { signals.increment() }
                }
                _ = try? shell("echo 'items: []' >> '\(file)'")
                #expect(await eventually { signals.current >= 1 })
                group.cancelAll()
            }
        }
    }
}

@Suite("Lifecycle", .timeLimit(.minutes(2)))
struct LifecycleTests {
    @Test("graceful shutdown of a ServiceGroup stops the watcher thread and run() returns")
    func gracefulShutdown() async throws {
        let tree = try PodTree("shutdown")
        defer { tree.remove() }
        try tree.makeVolume(podA, "one", directories: ["a"])
        let watcher = makeWatcher(tree)
        let group = ServiceGroup(services: [watcher], logger: LogRecorder().logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await watcher.waitUntilReady()
            #expect(watcher.threadRunning)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(!watcher.threadRunning)
        #expect(watcher.status.ready)
        // The manifests stream finished with run().
        var iterator = watcher.manifestChanges.makeAsyncIterator()
        #expect(await iterator.next() == nil)
    }

    @Test("cancelling run() stops the thread, also during the initial crawl")
    func cancellation() async throws {
        let tree = try PodTree("cancel")
        defer { tree.remove() }
        try tree.makeVolume(podA, "one", directories: (0..<200).map { "d\($0)/e" })
        let watcher = makeWatcher(tree)
        await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await watcher.run() }
            tasks.cancelAll()
            _ = try? await tasks.waitForAll()
        }
        #expect(!watcher.threadRunning)
        await watcher.waitUntilReady()  // returns: the watcher has finished

        let second = makeWatcher(tree)
        _ = try await withRunningWatcher(second) { watcher in watcher.status.watches }
        #expect(!second.threadRunning)
        await #expect(throws: WatcherError.self) { try await second.run() }
    }

    #if canImport(ServiceLifecycleTestKit)
    @Test("graceful shutdown through ServiceLifecycleTestKit")
    func testKitShutdown() async throws {
        let tree = try PodTree("testkit")
        defer { tree.remove() }
        try tree.makeVolume(podA, "one")
        let watcher = makeWatcher(tree)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await watcher.run() }
                await watcher.waitUntilReady()
                trigger.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
        #expect(!watcher.threadRunning)
    }
    #endif
}
