import Foundation
import Logging
import ReaperCore
import SystemCalls
import SystemPackage

/// What a watched directory is, which says what its events mean.
enum WatchRole: Hashable {
    /// `<root>`, watched only while `<root>/pods` does not exist.
    case kubeletRoot
    /// `<root>/pods`, `<uid>`, `<uid>/volumes`, `<uid>/volumes/<plugin>`:
    /// their events only find new pods and volumes.
    case pods, pod, podVolumes, plugin
    /// A volume's root directory or any directory below it; the value is the
    /// volume path. Events here are accesses of that volume.
    case volume(String)
    /// The manifests directory (nil), or the directory holding the manifests
    /// file of that name.
    case manifests(String?)

    var isContainer: Bool {
        switch self {
        case .kubeletRoot, .pods, .pod, .podVolumes, .plugin: return true
        case .volume, .manifests: return false
        }
    }
}

/// What a watch descriptor stands for, kept small: on a large node there is
/// one per directory (24 bytes each in the table, paths of 15 bytes or less inline).
struct WatchEntry {
    enum Kind: UInt8 { case kubeletRoot, pods, pod, podVolumes, plugin, volume, manifests }

    /// `.volume`: the path below the volume root ("" for the root itself);
    /// otherwise the absolute path.
    var path: String
    /// The volume's id for `.volume`, else -1.
    var volume: Int32
    /// The rescan that last confirmed this watch (wrapping); the others are
    /// dropped after a rescan.
    var generation: UInt16
    var kind: Kind

    init(kind: Kind, volume: Int32, generation: UInt16, path: String) {
        self.path = path
        self.volume = volume
        self.generation = generation
        self.kind = kind
    }
}

/// What the poll fallback compares: a change in any of these is an access.
struct TreeFingerprint: Hashable {
    var newestModification = KernelTime(seconds: 0, nanoseconds: 0)
    var newestChange = KernelTime(seconds: 0, nanoseconds: 0)
    var entries = 0

    mutating func note(_ status: FileStatus) {
        newestModification = max(newestModification, status.modified)
        newestChange = max(newestChange, status.changed)
    }
}

struct VolumeState {
    var id: Int32
    /// The watch on the volume's root directory (the topmost, when a mount covers it).
    var root: Int32?
    var polled = false
    var fingerprint: TreeFingerprint?
}

/// The watch table and everything that changes it. Used by the watcher thread
/// (and by tests through `VolumeWatcher.handle`), always under the engine lock.
final class WatchEngine {
    let kubeletRoot: String
    let podsPath: String
    let manifestsPath: String?
    let options: WatcherOptions
    let logger: Logger
    let ledger: Ledger
    let clock: @Sendable () -> Date

    var inotify: FileDescriptor?
    let readBuffer: UnsafeMutableRawBufferPointer

    /// wd -> what it watches: the O(1) map from an event to its volume.
    var table = WatchTable()
    /// Watches above volume level, by path (few; for removing subtrees).
    var containerWatches: [String: Int32] = [:]
    /// Manifest watches; the value names the file watched through its directory.
    var manifestWatches: [Int32: String?] = [:]
    var volumes: [String: VolumeState] = [:]
    var volumePaths: [Int32: String] = [:]
    var nextVolumeID: Int32 = 0
    var polledCount = 0
    /// Watches we removed whose `IN_IGNORED` has not arrived yet.
    var retiring: Set<Int32> = []
    var generation: UInt16 = 1
    /// Events read but not handled yet, with their arrival time. Walks read
    /// the queue while they work (so their own directory opens cannot overflow
    /// it) and leave the events here.
    var backlog: [(events: [InotifyEvent], at: Date)] = []
    var pendingTouches: [Int32: Date] = [:]
    var directoriesSinceDrain = 0
    var crawled = false
    var seenVolumes: Set<String>?
    var mountTypes: [UInt64: String] = [:]
    var unknownMountIDs: Set<UInt64> = []
    var podMounts: Set<MountRecord> = []
    var resolvedPodsPath: String
    /// File system types of the mount points under the pods directory.
    var podMountTypes: [String: String] = [:]
    var discoveryIncomplete = false
    var manifestWatchMissing = false
    var manifestProblemLogged = false
    var coverageRetry = false
    var ticksSinceCoverageRetry = 0
    var watchLimitReason: String?
    var warnedWatchLimit = false
    var readFailure: WatcherError?

    init(kubeletRoot: String, manifestsPath: String?, options: WatcherOptions, logger: Logger, ledger: Ledger, clock: @escaping @Sendable () -> Date) {
        self.kubeletRoot = kubeletRoot
        self.podsPath = kubeletRoot == "/" ? "/pods" : kubeletRoot + "/pods"
        self.manifestsPath = manifestsPath
        self.options = options
        self.logger = logger
        self.ledger = ledger
        self.clock = clock
        self.readBuffer = .allocate(byteCount: 256 * 1024, alignment: 8)
        self.resolvedPodsPath = podsPath
    }

    deinit {
        readBuffer.deallocate()
    }

    var wantsTicks: Bool { polledCount > 0 || discoveryIncomplete || manifestWatchMissing }

    // MARK: Entry points (each ends with processBacklog + flush)

    /// The initial crawl: every directory watched, then listed.
    func start() {
        let started = clock()
        if let records = refreshMounts() { setPodMounts(podMountSet(records)) }
        crawl(skipKnown: false)
        setupManifestWatch()
        crawled = true
        processBacklog()
        flush()
        logger.info("watching volumes", metadata: [
            "watches": "\(table.count)", "volumes": "\(volumes.count)", "polledVolumes": "\(polledCount)",
            "seconds": "\(String(format: "%.3f", clock().timeIntervalSince(started)))",
        ])
    }

    /// Reads what the kernel queued, handles it, publishes.
    func service() {
        readAvailable(maxReads: 64)
        processBacklog()
        flush()
    }

    /// Feeds records as if read from the kernel (tests drive overflow this way).
    func inject(_ events: [InotifyEvent]) {
        ingest(events, at: clock())
        processBacklog()
        flush()
    }

    /// The mount table changed: a new mount hides the watch on the directory
    /// under it, and an unmount uncovers a directory that may be unwatched.
    func mountsChanged() {
        guard let records = refreshMounts() else { return }
        let current = podMountSet(records)
        let changed = current.symmetricDifference(podMounts)
        setPodMounts(current)
        let paths = Set(changed.map(\.mountPoint)).sorted { $0.utf8.count < $1.utf8.count }
        for path in paths {
            guard let role = classify(path), isDirectory(path) else { continue }
            logger.debug("mount changed under the pods directory, watching it again", metadata: ["path": "\(path)"])
            walk(from: path, role: role)
        }
        processBacklog()
        flush()
    }

    /// Every `pollInterval` while something needs polling.
    func tick() {
        let now = clock()
        for volume in volumes.keys.sorted() where volumes[volume]?.polled == true {
            guard let fingerprint = fingerprint(of: volume) else {
                if !isDirectory(volume) { forgetVolume(volume) }
                continue
            }
            if let state = volumes[volume], fingerprint != state.fingerprint {
                volumes[volume]?.fingerprint = fingerprint
                touch(state.id, at: now)
            }
        }
        ticksSinceCoverageRetry += 1
        if polledCount > 0, coverageRetry || ticksSinceCoverageRetry >= 10 {
            coverageRetry = false
            ticksSinceCoverageRetry = 0
            retryCoverage()
        }
        if discoveryIncomplete {
            discoveryIncomplete = false
            crawl(skipKnown: true)
        }
        if manifestWatchMissing { setupManifestWatch() }
        processBacklog()
        flush()
    }

    func shutdown() {
        inotify = nil
    }

    // MARK: Publishing

    func touch(_ volume: Int32, at time: Date) {
        if let existing = pendingTouches[volume], existing >= time { return }
        pendingTouches[volume] = time
    }

    /// Publishes the coalesced touches to the ledger.
    func flushTouches() {
        guard !pendingTouches.isEmpty else { return }
        var touches: [String: Date] = [:]
        for (id, time) in pendingTouches {
            if let volume = volumePaths[id] { touches[volume] = time }
        }
        pendingTouches = [:]
        ledger.record(touches)
    }

    func flush() {
        flushTouches()
        ledger.publish(watches: table.count)
        if let reason = watchLimitReason, !warnedWatchLimit {
            warnedWatchLimit = true
            logger.warning(
                "inotify watch limit reached: volumes that could not be watched are polled for mtime changes instead; raise the sysctl fs.inotify.max_user_watches",
                metadata: [
                    "polledVolumes": "\(polledCount)", "watches": "\(table.count)", "reason": "\(reason)",
                    "max_user_watches": "\(Self.kernelWatchLimit() ?? "unknown")",
                    "pollInterval": "\(options.pollInterval)",
                ]
            )
        }
    }

    static func kernelWatchLimit() -> String? {
        // Non-blocking, regular files only: /proc is not ours.
        (try? RegularFileReader.readStart("/proc/sys/fs/inotify/max_user_watches", maxBytes: 64))
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}
