import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import SystemCalls
import SystemPackage

/// Turns inotify events on the kubelet's pod volume trees into per-volume
/// last-access times (design §2, §5.7).
///
/// Watches `<root>/pods`, every pod directory, its `volumes/`, every plugin
/// directory and every directory of every volume tree, without following
/// symlinks. A dedicated thread reads the inotify descriptor, so the
/// cooperative pool never blocks; `drainAccesses()` hands the coalesced
/// times to the store. A lost signal (queue overflow, unknown watch, a watch
/// the kernel refused) only ever makes volumes look used, never idle.
public final class VolumeWatcher: Service, Sendable {
    /// The kubelet root, without a trailing slash.
    public let kubeletRoot: String
    public let manifestsPath: String?
    public let options: WatcherOptions
    /// A signal per change of the manifests path, coalesced: at most one waits
    /// while the consumer is busy. Finishes when `run()` returns. One consumer.
    public let manifestChanges: AsyncStream<Void>

    private let logger: Logger
    private let ledger: Ledger
    private let engine: Mutex<WatchEngine>
    private let started = Atomic<Bool>(false)
    private let now: @Sendable () -> Date

    /// - Parameter now: the clock that stamps event arrival (tests inject one).
    public init(
        kubeletRoot: String, manifestsPath: String?, options: WatcherOptions, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        let root = kubeletRoot.count > 1 && kubeletRoot.hasSuffix("/") ? String(kubeletRoot.dropLast()) : kubeletRoot
        self.kubeletRoot = root
        self.manifestsPath = manifestsPath
        self.options = options
        self.logger = logger
        self.now = now
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.manifestChanges = stream
        let ledger = Ledger(manifestSignal: continuation)
        self.ledger = ledger
        self.engine = Mutex(WatchEngine(
            kubeletRoot: root, manifestsPath: manifestsPath, options: options, logger: logger, ledger: ledger, clock: now
        ))
    }

    // MARK: What the rest of the agent reads

    /// Returns and clears the access times and removals gathered since the
    /// last call. Every event the kernel queued before the call is in (the
    /// call handles the queue first): the watcher thread reads in batches,
    /// and a burst it has half read (a volume's `rm -rf`) must not show as
    /// an access of a volume whose removal is already queued.
    public func drainAccesses() -> WatcherDrain {
        synchronize()
        return ledger.state.withLock { state in
            defer {
                state.accesses = [:]
                state.removed = []
            }
            return WatcherDrain(accesses: state.accesses, removed: state.removed)
        }
    }

    /// Returns and clears the volumes that may have changed since the last
    /// call (an event in the tree, appeared, gone, a watch ended), with the
    /// volumes inotify covers whole now. `everythingDirty` after lost signals
    /// (and on the first call, or while the thread is not running): then
    /// only a full walk is safe. Every event the kernel queued before the
    /// call is in: the call handles the queue first.
    /// Polled volumes are never `watched`.
    public func drainDirtyVolumes() -> DirtyVolumes {
        let running = threadRunning
        // Under the engine's lock: no walk of the watcher is half done, so a
        // volume listed as watched has every watch its walk could set.
        return engine.withLock { engine in
            if running { engine.service() }
            return ledger.state.withLock { state in
                defer {
                    state.dirty = []
                    state.everythingDirty = state.recoveringLostSignals
                }
                return DirtyVolumes(
                    volumes: state.dirty,
                    everything: state.everythingDirty || !running || !state.ready || state.recoveringLostSignals,
                    watched: state.known.subtracting(state.polled)
                )
            }
        }
    }

    /// Puts back a drain whose accesses could not be stored, so they are not lost.
    public func requeue(_ drain: WatcherDrain) {
        ledger.requeue(accesses: drain.accesses, removed: drain.removed)
    }

    /// Handles, on the calling thread, every record the kernel has queued by
    /// now (an overflow too). A reader that calls this before it drains and
    /// asks `lostSignalsAccess` sees every event that happened before the call.
    /// Waits while the watcher thread holds the watch table (a rescan).
    public func synchronize() {
        guard threadRunning else { return }
        let failed = engine.withLock { engine -> Bool in
            engine.service()
            return engine.readFailure != nil
        }
        // The thread reports the failure and stops; it may sleep in poll now.
        if failed { ledger.wake() }
    }

    /// When events were last lost (a queue overflow, an event for an unknown
    /// watch): every volume, known to the watcher or not, counts as accessed
    /// then; while the rescan that follows runs, `now`. Nil when none was lost.
    public func lostSignalsAccess(now: Date) -> Date? {
        ledger.state.withLock { state in
            state.recoveringLostSignals ? now : state.signalsLostAt
        }
    }

    public var status: WatcherStatus {
        ledger.state.withLock { state in
            WatcherStatus(
                watches: state.watches, watchedVolumes: state.known.count - state.polled.count,
                polledVolumes: state.polled.count, eventsHandled: state.eventsHandled, overflows: state.overflows,
                rescans: state.rescans, lastEventAt: state.lastEventAt, ready: state.ready
            )
        }
    }

    /// Volume paths (`<root>/pods/<uid>/volumes/<plugin>/<name>`) the watcher knows, watched or polled.
    public var knownVolumes: Set<String> {
        ledger.state.withLock { $0.known }
    }

    /// Returns once the initial crawl has set every watch it could (volumes it
    /// could not cover are on the poll list by then), or when `run()` ended or
    /// the calling task is cancelled.
    public func waitUntilReady() async {
        await ledger.waitUntilReady()
    }

    // MARK: Service

    /// Starts the watcher thread, which crawls and then follows events, and
    /// returns after graceful shutdown or cancellation once the thread has
    /// stopped and every descriptor is closed. Throws when inotify is
    /// unavailable or reading it fails; a watcher runs once.
    public func run() async throws {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw WatcherError(code: .alreadyStarted, message: "a VolumeWatcher runs once")
        }
        defer { ledger.manifestSignal.finish() }
        let inotify: FileDescriptor
        do {
            inotify = try Syscall.inotifyInit()
        } catch {
            ledger.markFinished(failure: nil)
            throw WatcherError(code: .inotifyUnavailable, message: "\(error) (fs.inotify.max_user_instances?)")
        }
        let wakePipe: (read: FileDescriptor, write: FileDescriptor)
        do {
            wakePipe = try Syscall.pipe(nonBlocking: true)
        } catch {
            Syscall.close(inotify)
            ledger.markFinished(failure: nil)
            throw WatcherError(code: .inotifyUnavailable, message: "pipe: \(error.errno)")
        }
        let wakeRead = wakePipe.read
        let mountInfo: FileDescriptor?
        do {
            mountInfo = try Syscall.openAt(nil, options.mountInfoPath, flags: OpenFlags.readOnly)
        } catch {
            mountInfo = nil
            logger.warning("cannot follow the mount table: mounts appearing later over watched directories are not watched",
                           metadata: ["path": "\(options.mountInfoPath)", "error": "\(error)"])
        }
        ledger.state.withLock { state in
            state.wakeDescriptor = wakePipe.write
            state.threadRunning = true
        }
        engine.withLock { $0.inotify = inotify }

        let thread = Thread { [self] in
            self.threadMain(inotify: inotify, wakeRead: wakeRead, mountInfo: mountInfo)
        }
        thread.name = "volume-watcher"
        thread.start()

        await withTaskCancellationOrGracefulShutdownHandler {
            await ledger.waitUntilFinished()
        } onCancelOrGracefulShutdown: { [ledger] in
            ledger.requestStop()
        }
        if let failure = ledger.state.withLock({ $0.failure }) { throw failure }
    }

    /// The watcher thread: crawl, signal ready, then poll the inotify
    /// descriptor, the mount table and the wake pipe until asked to stop.
    private func threadMain(inotify: FileDescriptor, wakeRead: FileDescriptor, mountInfo: FileDescriptor?) {
        var failure: WatcherError?
        Self.nameCurrentThread("volume-watcher")
        engine.withLock { $0.start() }
        ledger.markReady()

        let clock = ContinuousClock()
        var nextTick: ContinuousClock.Instant?
        var descriptors = [
            pollfd(fd: inotify.rawValue, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead.rawValue, events: Int16(POLLIN), revents: 0),
            pollfd(fd: mountInfo?.rawValue ?? -1, events: Int16(POLLPRI), revents: 0),
        ]
        while !ledger.stopRequested {
            let (wantsTicks, readFailure) = engine.withLock { ($0.wantsTicks, $0.readFailure) }
            if let readFailure {
                // Found by `synchronize()` on another thread.
                failure = readFailure
                break
            }
            if !wantsTicks {
                nextTick = nil
            } else if nextTick == nil {
                nextTick = clock.now.advanced(by: options.pollInterval)
            }
            var timeout: Int32 = -1
            if let nextTick {
                timeout = Int32(clamping: max(0, Self.milliseconds(clock.now.duration(to: nextTick))))
            }
            for index in descriptors.indices { descriptors[index].revents = 0 }
            do {
                _ = try Syscall.poll(&descriptors, timeoutMilliseconds: timeout)
            } catch {
                failure = WatcherError(code: .readFailed, message: "\(error)")
                break
            }
            if ledger.stopRequested { break }
            if descriptors[0].revents & Int16(POLLNVAL | POLLERR) != 0 {
                failure = WatcherError(code: .readFailed, message: "poll: the inotify descriptor reported an error")
                break
            }
            if descriptors[0].revents != 0 {
                gatherBatch(wakeRead: wakeRead)
                if let error = engine.withLock({ engine -> WatcherError? in
                    engine.service()
                    return engine.readFailure
                }) {
                    failure = error
                    break
                }
            }
            if descriptors[2].revents & Int16(POLLPRI | POLLERR) != 0 {
                engine.withLock { $0.mountsChanged() }
            }
            if let due = nextTick, clock.now >= due {
                engine.withLock { $0.tick() }
                nextTick = clock.now.advanced(by: options.pollInterval)
            }
            if descriptors[1].revents != 0 {
                var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
                withUnsafeMutableBytes(of: &bytes) { buffer in
                    while let count = try? Syscall.read(wakeRead, into: buffer), count > 0 {}
                }
            }
        }

        engine.withLock { $0.shutdown() }
        Syscall.close(inotify)
        Syscall.close(wakeRead)
        if let mountInfo { Syscall.close(mountInfo) }
        ledger.state.withLock { state in
            if let descriptor = state.wakeDescriptor { Syscall.close(descriptor) }
            state.wakeDescriptor = nil
        }
        if let failure {
            logger.error("volume watcher stopped", metadata: ["error": "\(failure)"])
        }
        ledger.markFinished(failure: failure)
    }

    /// Once the queue has a record, the thread waits this long before reading
    /// it, so that a burst (an `rm -rf`, a storm) is read and handled as one
    /// batch: a wakeup and a read serve hundreds of records instead of a few,
    /// and a volume removed in the burst is not first reported as used. The
    /// kernel's queue (16,384 records by default) holds far more than one
    /// interval of the heaviest storm measured (about 100,000 records a
    /// second); readers that must see every event (`synchronize()`) read the
    /// queue themselves.
    static let readBatchInterval = Duration.milliseconds(5)

    /// Waits `readBatchInterval`, or less if the wake pipe says stop.
    private func gatherBatch(wakeRead: FileDescriptor) {
        var wake = [pollfd(fd: wakeRead.rawValue, events: Int16(POLLIN), revents: 0)]
        _ = try? Syscall.poll(&wake, timeoutMilliseconds: Int32(Self.milliseconds(Self.readBatchInterval)))
    }

    /// Names the thread for `top -H` and `ps -L` (Foundation's `Thread.name`
    /// does not reach the kernel on Linux, and Glibc hides `pthread_setname_np`).
    private static func nameCurrentThread(_ name: String) {
        guard let fd = try? Syscall.openAt(nil, "/proc/thread-self/comm", flags: OpenFlags.writeOnly) else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { try? Syscall.write(fd, from: $0) }
        Syscall.close(fd)
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    // MARK: Test hooks

    /// Handles records as if the thread had read them (tests drive the
    /// overflow and unknown-watch paths with synthetic records).
    func handle(_ events: [InotifyEvent]) {
        engine.withLock { $0.inject(events) }
    }

    /// The watch descriptor that covers `path` now, if any.
    func watchDescriptor(for path: String) -> Int32? {
        engine.withLock { $0.watchDescriptor(for: path) }
    }

    /// Whether the watcher thread is alive.
    var threadRunning: Bool {
        ledger.state.withLock { $0.threadRunning }
    }
}
