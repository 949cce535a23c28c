#if canImport(Glibc)
import Glibc
#endif
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
/// one per directory (about 40 bytes each, names of 15 bytes or less inline).
struct WatchEntry {
    enum Kind: UInt8 { case kubeletRoot, pods, pod, podVolumes, plugin, volume, manifests }

    var kind: Kind
    /// The volume's id for `.volume`, else -1.
    var volume: Int32
    /// The rescan that last confirmed this watch; older ones are dropped after a rescan.
    var generation: UInt32
    /// `.volume`: the path below the volume root ("" for the root itself);
    /// otherwise the absolute path.
    var path: String
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
    var watches: Set<Int32> = []
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
    private let readBuffer: UnsafeMutableRawBufferPointer

    /// wd -> what it watches: the O(1) map from an event to its volume.
    private(set) var table: [Int32: WatchEntry] = [:]
    /// Watches above volume level, by path (few; for removing subtrees).
    private var containerWatches: [String: Int32] = [:]
    /// Manifest watches; the value names the file watched through its directory.
    private var manifestWatches: [Int32: String?] = [:]
    private(set) var volumes: [String: VolumeState] = [:]
    private var volumePaths: [Int32: String] = [:]
    private var nextVolumeID: Int32 = 0
    private var polledCount = 0
    /// Watches we removed whose `IN_IGNORED` has not arrived yet.
    private var retiring: Set<Int32> = []
    private var generation: UInt32 = 1
    /// Events read but not handled yet, with their arrival time. Walks read
    /// the queue while they work (so their own directory opens cannot overflow
    /// it) and leave the events here.
    private var backlog: [(events: [InotifyEvent], at: Date)] = []
    private var pendingTouches: [Int32: Date] = [:]
    private var directoriesSinceDrain = 0
    private var crawled = false
    private var seenVolumes: Set<String>?
    private var mountTypes: [UInt64: String] = [:]
    private var unknownMountIDs: Set<UInt64> = []
    private var podMounts: Set<MountRecord> = []
    private var resolvedPodsPath: String
    /// File system types of the mount points under the pods directory.
    private var podMountTypes: [String: String] = [:]
    private var discoveryIncomplete = false
    private var manifestWatchMissing = false
    private var manifestProblemLogged = false
    private var coverageRetry = false
    private var ticksSinceCoverageRetry = 0
    private var watchLimitReason: String?
    private var warnedWatchLimit = false
    private(set) var readFailure: WatcherError?

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

    // MARK: Reading

    func readAvailable(maxReads: Int) {
        guard let inotify, readFailure == nil else { return }
        for _ in 0..<maxReads {
            let count: Int
            do {
                count = try Syscall.read(inotify, into: readBuffer, path: "inotify")
            } catch {
                if error.errno != .resourceTemporarilyUnavailable {
                    readFailure = WatcherError(code: .readFailed, message: "\(error)")
                }
                return
            }
            guard count > 0 else { return }
            let time = clock()
            let parsed = VolumeWatcher.parseEvents(
                UnsafeRawBufferPointer(rebasing: readBuffer[..<count]), skipping: InotifyMask.isDirectoryBrowse
            )
            ledger.noteEvents(parsed.count, at: time)
            if !parsed.events.isEmpty { backlog.append((parsed.events, time)) }
            if count < readBuffer.count / 2 { return }
        }
    }

    private func ingest(_ events: [InotifyEvent], at time: Date) {
        ledger.noteEvents(events.count, at: time)
        let relevant = events.filter { !InotifyMask.isDirectoryBrowse($0.mask) }
        if !relevant.isEmpty { backlog.append((relevant, time)) }
    }

    /// Keeps the kernel queue short during long walks: our own opens of
    /// watched directories queue an event each.
    private func noteDirectoryOpened() {
        directoriesSinceDrain += 1
        if directoriesSinceDrain >= 64 {
            directoriesSinceDrain = 0
            readAvailable(maxReads: 16)
        }
    }

    // MARK: Handling

    func processBacklog() {
        while !backlog.isEmpty {
            let batch = backlog
            backlog = []
            var rescan = false
            for (events, time) in batch {
                for event in events where handle(event, at: time) {
                    rescan = true
                }
            }
            if rescan {
                fullRescan()
                // A lost signal only delays a deletion (design §5.7).
                let now = clock()
                for state in volumes.values { touch(state.id, at: now) }
            }
        }
    }

    /// Handles one record; returns true when only a rescan can tell what happened.
    private func handle(_ event: InotifyEvent, at time: Date) -> Bool {
        let mask = event.mask
        if mask & InotifyMask.queueOverflow != 0 {
            ledger.noteOverflow()
            logger.warning("inotify queue overflowed: rescanning, every volume counts as accessed now")
            return true
        }
        guard let entry = table[event.wd] else {
            if mask & InotifyMask.ignored != 0 {
                retiring.remove(event.wd)
                return false
            }
            if retiring.contains(event.wd) { return false }
            logger.notice("inotify event for an unknown watch: rescanning", metadata: ["event": "\(event)"])
            return true
        }
        if mask & InotifyMask.ignored != 0 {
            watchEnded(event.wd, entry)
            return false
        }
        if mask & InotifyMask.unmount != 0 { return false }

        let isDirectory = mask & InotifyMask.isDirectory != 0 && !event.name.isEmpty
        let appeared = isDirectory && mask & (InotifyMask.create | InotifyMask.movedTo) != 0
        let vanished = isDirectory && mask & (InotifyMask.delete | InotifyMask.movedFrom) != 0

        if entry.kind == .volume {
            guard let volume = volumePaths[entry.volume] else { return false }
            touch(entry.volume, at: time)
            if appeared, volumes[volume]?.polled != true {
                // Watch first, then scan: `mkdir -p a/b/c && echo x > a/b/c/f` is seen.
                // (A polled volume's new directories are covered by its polling.)
                walk(from: join(fullPath(entry, volume: volume), event.name), role: .volume(volume))
            } else if vanished, mask & InotifyMask.movedFrom != 0 {
                retireSubtree(join(entry.path, event.name), in: volume)
            }
            if mask & InotifyMask.deleteSelf != 0, entry.path.isEmpty, volumes[volume]?.root == event.wd {
                forgetVolume(volume)
            }
            return false
        }

        let child = join(entry.path, event.name)
        switch entry.kind {
        case .kubeletRoot:
            guard event.name == "pods" else { break }
            if appeared { walk(from: podsPath, role: .pods) } else if vanished { forgetSubtree(podsPath) }
        case .pods:
            guard PodDirectoryKind(directoryName: event.name) != nil else { break }
            if appeared { walk(from: child, role: .pod) } else if vanished { forgetSubtree(child) }
        case .pod:
            guard event.name == "volumes" else { break }
            if appeared { walk(from: child, role: .podVolumes) } else if vanished { forgetSubtree(child) }
        case .podVolumes:
            if appeared { walk(from: child, role: .plugin) } else if vanished { forgetSubtree(child) }
        case .plugin:
            if appeared { walk(from: child, role: .volume(child)) } else if vanished { forgetVolume(child) }
        case .manifests:
            let name = manifestWatches[event.wd] ?? nil
            if name == nil || event.name == name || mask & (InotifyMask.deleteSelf | InotifyMask.moveSelf) != 0 {
                ledger.manifestSignal.yield(())
            }
            if let name, event.name == name, appeared { setupManifestWatch() }
        case .volume:
            break
        }
        return false
    }

    /// `IN_IGNORED`: the kernel dropped the watch (directory deleted, file
    /// system unmounted). A directory still there is watched again.
    private func watchEnded(_ wd: Int32, _ entry: WatchEntry) {
        table.removeValue(forKey: wd)
        unlink(wd, entry)
        switch entry.kind {
        case .volume:
            guard let volume = volumePaths[entry.volume] else { return }
            let path = fullPath(entry, volume: volume)
            if isDirectory(path) {
                walk(from: path, role: .volume(volume))
            } else if entry.path.isEmpty, volumes[volume]?.root == nil {
                forgetVolume(volume)
            }
        case .manifests:
            setupManifestWatch()
        case .pods where !isDirectory(podsPath):
            forgetSubtree(podsPath)
            crawl(skipKnown: true)
        default:
            guard containerWatches[entry.path] == nil else { return }
            if isDirectory(entry.path) {
                walk(from: entry.path, role: Self.role(of: entry.kind, path: entry.path))
            } else {
                forgetSubtree(entry.path)
                if entry.kind == .kubeletRoot { discoveryIncomplete = true }
            }
        }
    }

    private func join(_ path: String, _ name: String) -> String {
        if name.isEmpty { return path }
        if path.isEmpty { return name }
        return path + "/" + name
    }

    private func fullPath(_ entry: WatchEntry, volume: String) -> String {
        entry.path.isEmpty ? volume : volume + "/" + entry.path
    }

    static func role(of kind: WatchEntry.Kind, path: String) -> WatchRole {
        switch kind {
        case .kubeletRoot: return .kubeletRoot
        case .pods: return .pods
        case .pod: return .pod
        case .podVolumes: return .podVolumes
        case .plugin: return .plugin
        case .volume: return .volume(path)
        case .manifests: return .manifests(nil)
        }
    }

    // MARK: The walk

    private struct Frame {
        var fd: FileDescriptor
        var path: String
        var role: WatchRole
        var entries: [DirectoryEntry]
        var next = 0
    }

    /// Watches `path` and every directory below it that has a role: each one
    /// watched first, then listed, so nothing created meanwhile is missed.
    /// Never follows a symlink; holds one descriptor per level.
    func walk(from path: String, role: WatchRole, skipKnown: Bool = false) {
        guard let first = enter(parent: nil, name: FileName(path), path: path, role: role) else { return }
        var stack = [first]
        while !stack.isEmpty {
            if ledger.stopRequested {
                for frame in stack { Syscall.close(frame.fd) }
                return
            }
            let top = stack.count - 1
            guard stack[top].next < stack[top].entries.count else {
                Syscall.close(stack[top].fd)
                stack.removeLast()
                continue
            }
            let entry = stack[top].entries[stack[top].next]
            stack[top].next += 1
            // Paths key the watch table (a name that is not UTF-8 shows as
            // `\xNN`); calls take the raw name.
            let childPath = stack[top].path + "/" + entry.name.description
            guard let childRole = Self.childRole(of: stack[top].role, name: entry.name.description, path: childPath) else { continue }
            switch entry.type {
            case .directory: break
            case .unknown:
                guard (try? Syscall.statx(stack[top].fd, entry.name))?.isDirectory == true else { continue }
            default: continue
            }
            if case .volume(let volume) = childRole, volume == childPath {
                seenVolumes?.insert(volume)
                if let state = volumes[volume], skipKnown || state.polled { continue }
            }
            if let frame = enter(parent: stack[top].fd, name: entry.name, path: childPath, role: childRole) {
                stack.append(frame)
            }
        }
    }

    static func childRole(of role: WatchRole, name: String, path: String) -> WatchRole? {
        switch role {
        case .kubeletRoot: return name == "pods" ? .pods : nil
        case .pods: return PodDirectoryKind(directoryName: name) != nil ? .pod : nil
        case .pod: return name == "volumes" ? .podVolumes : nil
        case .podVolumes: return .plugin
        case .plugin: return .volume(path)
        case .volume(let volume): return .volume(volume)
        case .manifests: return nil
        }
    }

    /// Opens one directory, watches it, lists it. Nil when there is nothing to descend into.
    private func enter(parent: FileDescriptor?, name: FileName, path: String, role: WatchRole) -> Frame? {
        noteDirectoryOpened()
        if case .volume(let volume) = role, volume == path { discovered(volume) }
        let fd: FileDescriptor
        do {
            fd = try Syscall.openDirectory(parent, name)
        } catch {
            if case .volume(let volume) = role {
                if error.isVanished || error.errno == .notDirectory || error.errno == .tooManySymbolicLinkLevels {
                    // Gone or swapped while we looked: that is activity, or the volume is gone.
                    if volume == path {
                        if !isDirectory(path) { forgetVolume(volume) }
                    } else if let id = volumes[volume]?.id {
                        touch(id, at: clock())
                    }
                } else {
                    logger.debug("cannot open a volume directory, polling the volume", metadata: ["path": "\(path)", "error": "\(error)"])
                    markPolled(volume, reason: "\(error)")
                }
            } else if !error.isVanished {
                logger.warning("cannot open a directory of the pods tree", metadata: ["path": "\(path)", "error": "\(error)"])
                discoveryIncomplete = true
            }
            return nil
        }

        // A name that is not UTF-8 has no textual path: watch the directory we opened.
        switch addWatch(path: name.string == nil ? "/proc/self/fd/\(fd.rawValue)/." : path, role: role) {
        case .watched:
            break
        case .refused(let reason, let exhausted):
            if case .volume(let volume) = role {
                if !exhausted {
                    logger.debug("cannot watch a volume directory, polling the volume", metadata: ["path": "\(path)", "error": "\(reason)"])
                }
                markPolled(volume, reason: reason)
                Syscall.close(fd)
                return nil
            }
            if !exhausted {
                logger.warning("cannot watch a directory of the pods tree", metadata: ["path": "\(path)", "error": "\(reason)"])
            }
            if exhausted, watchLimitReason == nil { watchLimitReason = reason }
            discoveryIncomplete = true
        }

        var entries: [DirectoryEntry] = []
        if let type = podMountTypes[path], MountRecord.isRemote(type) {
            // A network mount: its root is watched, its tree is not walked.
        } else {
            do {
                entries = try Syscall.readDirectory(fd, path: path)
            } catch {
                logger.debug("cannot list a watched directory", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        return Frame(fd: fd, path: path, role: role, entries: entries)
    }

    private enum WatchOutcome {
        case watched(Int32)
        /// `exhausted`: the budget or the kernel's limit, not a problem with this directory.
        case refused(String, exhausted: Bool)
    }

    private func addWatch(path: String, role: WatchRole) -> WatchOutcome {
        guard let inotify else { return .refused("the watcher is not running", exhausted: false) }
        var mask: UInt32
        switch role {
        case .volume: mask = InotifyMask.volume(watchReads: options.watchReads)
        default: mask = InotifyMask.container
        }
        // By path, never following the last component. (Watching through
        // /proc/self/fd/N would pin exactly the directory we opened, but costs a
        // procfs lookup per directory: 15% of a 100k-directory crawl.) A parent
        // swapped for a symlink in between can only misplace one watch: the swap
        // itself is a rename event in a watched parent (an access, and a rescan
        // of what moved), and the reaper re-scans every volume before deleting.
        mask |= InotifyMask.onlyDirectory | InotifyMask.dontFollow
        let wd: Int32
        do {
            wd = try Syscall.inotifyAddWatch(inotify, path, mask: mask)
        } catch {
            let exhausted = error.errno == .noSpace || error.errno == .noMemory
            return .refused(exhausted ? "inotify_add_watch: \(error.errno) (fs.inotify.max_user_watches)" : "\(error)", exhausted: exhausted)
        }
        if table[wd] == nil, let limit = options.maxWatches, table.count >= limit {
            // A new watch over the budget: give it back.
            try? Syscall.inotifyRemoveWatch(inotify, wd)
            retiring.insert(wd)
            return .refused("watch budget of \(limit) reached", exhausted: true)
        }
        register(wd, path: path, role: role)
        return .watched(wd)
    }

    private func register(_ wd: Int32, path: String, role: WatchRole) {
        if let old = table[wd] {
            // Same inode under another path (moved, or bind-mounted): the newest path wins.
            unlink(wd, old)
        }
        retiring.remove(wd)
        switch role {
        case .volume(let volume):
            if volumes[volume] == nil { discovered(volume) }
            guard let id = volumes[volume]?.id else { return }
            let relative = path == volume ? "" : String(path[path.utf8.index(path.utf8.startIndex, offsetBy: volume.utf8.count + 1)...])
            table[wd] = WatchEntry(kind: .volume, volume: id, generation: generation, path: relative)
            volumes[volume]?.watches.insert(wd)
            if relative.isEmpty { volumes[volume]?.root = wd }
        case .manifests(let name):
            table[wd] = WatchEntry(kind: .manifests, volume: -1, generation: generation, path: path)
            manifestWatches[wd] = name
        default:
            let kind: WatchEntry.Kind
            switch role {
            case .kubeletRoot: kind = .kubeletRoot
            case .pods: kind = .pods
            case .pod: kind = .pod
            case .podVolumes: kind = .podVolumes
            default: kind = .plugin
            }
            table[wd] = WatchEntry(kind: kind, volume: -1, generation: generation, path: path)
            containerWatches[path] = wd
        }
    }

    /// Removes the indexes of `entry` (the table entry itself is the caller's).
    private func unlink(_ wd: Int32, _ entry: WatchEntry) {
        switch entry.kind {
        case .volume:
            if let volume = volumePaths[entry.volume] {
                volumes[volume]?.watches.remove(wd)
                if volumes[volume]?.root == wd { volumes[volume]?.root = nil }
            }
        case .manifests:
            manifestWatches.removeValue(forKey: wd)
        default:
            if containerWatches[entry.path] == wd { containerWatches.removeValue(forKey: entry.path) }
        }
        if polledCount > 0 { coverageRetry = true }
    }

    /// Drops a watch we no longer want; its `IN_IGNORED` arrives later.
    private func retire(_ wd: Int32) {
        guard let entry = table.removeValue(forKey: wd) else { return }
        unlink(wd, entry)
        if let inotify { try? Syscall.inotifyRemoveWatch(inotify, wd) }
        retiring.insert(wd)
    }

    /// A directory moved out of its place (`relative` to the volume root): its
    /// watches no longer say where it is.
    private func retireSubtree(_ relative: String, in volume: String) {
        guard let state = volumes[volume] else { return }
        let prefix = relative + "/"
        for wd in state.watches {
            if let entry = table[wd], entry.path == relative || entry.path.hasPrefix(prefix) { retire(wd) }
        }
    }

    // MARK: Volumes

    private func discovered(_ volume: String) {
        seenVolumes?.insert(volume)
        guard volumes[volume] == nil else { return }
        let id = nextVolumeID
        nextVolumeID &+= 1
        volumes[volume] = VolumeState(id: id)
        volumePaths[id] = volume
        ledger.addKnown(volume)
        // A volume that appears while we watch is in use as it appears.
        if crawled { touch(id, at: clock()) }
    }

    private func forgetVolume(_ volume: String) {
        guard let state = volumes[volume] else { return }
        for wd in state.watches { retire(wd) }
        volumes.removeValue(forKey: volume)
        volumePaths.removeValue(forKey: state.id)
        if state.polled { polledCount -= 1 }
        pendingTouches.removeValue(forKey: state.id)
        ledger.forget(volume)
        logger.debug("volume gone", metadata: ["path": "\(volume)"])
    }

    private func forgetSubtree(_ path: String) {
        let prefix = path + "/"
        for volume in volumes.keys where volume.hasPrefix(prefix) { forgetVolume(volume) }
        for (watched, wd) in containerWatches where watched == path || watched.hasPrefix(prefix) { retire(wd) }
    }

    private func touch(_ volume: Int32, at time: Date) {
        if let existing = pendingTouches[volume], existing >= time { return }
        pendingTouches[volume] = time
    }

    func flush() {
        if !pendingTouches.isEmpty {
            var touches: [String: Date] = [:]
            for (id, time) in pendingTouches {
                if let volume = volumePaths[id] { touches[volume] = time }
            }
            pendingTouches = [:]
            ledger.record(touches)
        }
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
        (try? String(contentsOfFile: "/proc/sys/fs/inotify/max_user_watches", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Poll fallback

    private func markPolled(_ volume: String, reason: String) {
        if watchLimitReason == nil { watchLimitReason = reason }
        guard var state = volumes[volume], !state.polled else { return }
        state.polled = true
        polledCount += 1
        ledger.setPolled(volume, true)
        volumes[volume] = state
        // The baseline; a fingerprint kept from before (a failed retry) is compared first.
        let fingerprint = fingerprint(of: volume)
        if let old = state.fingerprint, old != fingerprint { touch(state.id, at: clock()) }
        volumes[volume]?.fingerprint = fingerprint
    }

    private func unpoll(_ volume: String) {
        guard volumes[volume]?.polled == true else { return }
        volumes[volume]?.polled = false
        polledCount -= 1
        ledger.setPolled(volume, false)
    }

    /// Watches were freed: try to cover polled volumes with inotify again.
    private func retryCoverage() {
        for volume in volumes.keys.sorted() where volumes[volume]?.polled == true {
            unpoll(volume)
            walk(from: volume, role: .volume(volume))
            guard volumes[volume]?.polled == false else { break }
            volumes[volume]?.fingerprint = nil
            logger.info("volume watched again", metadata: ["path": "\(volume)"])
        }
    }

    /// The newest mtime and ctime in a volume tree and its entry count, walked
    /// fd-relative without following symlinks or descending into network mounts.
    func fingerprint(of volume: String) -> TreeFingerprint? {
        guard let root = try? Syscall.openDirectory(nil, volume) else { return nil }
        var fingerprint = TreeFingerprint()
        guard let rootStatus = try? Syscall.statx(root, path: volume) else {
            Syscall.close(root)
            return nil
        }
        fingerprint.note(rootStatus)
        var stack: [(fd: FileDescriptor, entries: [DirectoryEntry], next: Int)] = []
        stack.append((root, (try? Syscall.readDirectory(root, path: volume)) ?? [], 0))
        while !stack.isEmpty {
            let top = stack.count - 1
            guard stack[top].next < stack[top].entries.count, !ledger.stopRequested else {
                Syscall.close(stack[top].fd)
                stack.removeLast()
                continue
            }
            let entry = stack[top].entries[stack[top].next]
            stack[top].next += 1
            guard let status = try? Syscall.statx(stack[top].fd, entry.name) else { continue }
            fingerprint.note(status)
            fingerprint.entries += 1
            guard status.isDirectory else { continue }
            if status.mountID != rootStatus.mountID, isRemote(mountID: status.mountID) { continue }
            noteDirectoryOpened()
            guard let child = try? Syscall.openDirectory(stack[top].fd, entry.name) else { continue }
            stack.append((child, (try? Syscall.readDirectory(child)) ?? [], 0))
        }
        return fingerprint
    }

    // MARK: Crawls

    private func crawl(skipKnown: Bool) {
        if isDirectory(podsPath) {
            walk(from: podsPath, role: .pods, skipKnown: skipKnown)
        } else if isDirectory(kubeletRoot) {
            logger.notice("no pods directory yet: watching the kubelet root for it", metadata: ["path": "\(podsPath)"])
            walk(from: kubeletRoot, role: .kubeletRoot)
        } else {
            logger.warning("kubelet root directory missing: looking again every poll interval", metadata: ["path": "\(kubeletRoot)"])
            discoveryIncomplete = true
        }
    }

    /// After an overflow or an unknown watch: walk everything again, drop
    /// watches the walk did not confirm, forget volumes it did not find.
    private func fullRescan() {
        ledger.noteRescan()
        generation += 1
        let before = Set(volumes.keys)
        seenVolumes = []
        crawl(skipKnown: false)
        setupManifestWatch()
        let seen = seenVolumes ?? []
        seenVolumes = nil
        guard !ledger.stopRequested else { return }
        for volume in before.subtracting(seen) { forgetVolume(volume) }
        for (wd, entry) in table where entry.generation < generation {
            if entry.kind == .volume, let volume = volumePaths[entry.volume], volumes[volume]?.polled == true { continue }
            retire(wd)
        }
    }

    // MARK: Manifests

    func setupManifestWatch() {
        guard let manifestsPath, let inotify else { return }
        manifestWatchMissing = false
        var info = stat()
        let isDirectory = stat(manifestsPath, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
        let target: String
        let role: WatchRole
        if isDirectory {
            target = manifestsPath
            role = .manifests(nil)
        } else {
            let url = URL(fileURLWithPath: manifestsPath)
            target = url.deletingLastPathComponent().path
            role = .manifests(url.lastPathComponent)
        }
        do {
            let wd = try Syscall.inotifyAddWatch(inotify, target, mask: InotifyMask.manifests | InotifyMask.onlyDirectory)
            register(wd, path: target, role: role)
            manifestProblemLogged = false
        } catch {
            manifestWatchMissing = true
            if !manifestProblemLogged {
                manifestProblemLogged = true
                logger.warning("cannot watch the manifests path: looking again every poll interval", metadata: ["path": "\(target)", "error": "\(error)"])
            }
        }
    }

    // MARK: Mounts and paths

    @discardableResult
    private func refreshMounts() -> [MountRecord]? {
        guard let records = MountRecord.read(path: options.mountInfoPath) else { return nil }
        mountTypes = Dictionary(records.map { ($0.id, $0.filesystemType) }, uniquingKeysWith: { $1 })
        unknownMountIDs = []
        resolvedPodsPath = realpath(podsPath, nil).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
        } ?? podsPath
        return records
    }

    private func isRemote(mountID: UInt64) -> Bool {
        if mountTypes[mountID] == nil, !unknownMountIDs.contains(mountID) {
            refreshMounts()
            if mountTypes[mountID] == nil { unknownMountIDs.insert(mountID) }
        }
        guard let type = mountTypes[mountID] else { return false }
        return MountRecord.isRemote(type)
    }

    /// Mounts under the pods directory, their mount points written the way we name paths.
    private func podMountSet(_ records: [MountRecord]) -> Set<MountRecord> {
        let prefix = resolvedPodsPath + "/"
        var result = Set<MountRecord>()
        for var record in records where record.mountPoint.hasPrefix(prefix) {
            record.mountPoint = podsPath + record.mountPoint.dropFirst(resolvedPodsPath.utf8.count)
            result.insert(record)
        }
        return result
    }

    private func setPodMounts(_ mounts: Set<MountRecord>) {
        podMounts = mounts
        podMountTypes = Dictionary(mounts.map { ($0.mountPoint, $0.filesystemType) }, uniquingKeysWith: { $1 })
    }

    /// What a path under the pods directory is, by its components.
    func classify(_ path: String) -> WatchRole? {
        guard path.hasPrefix(podsPath + "/") else { return path == podsPath ? .pods : nil }
        let components = path.dropFirst(podsPath.utf8.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard let uid = components.first, PodDirectoryKind(directoryName: String(uid)) != nil else { return nil }
        if components.count == 1 { return .pod }
        guard components[1] == "volumes" else { return nil }
        switch components.count {
        case 2: return .podVolumes
        case 3: return .plugin
        default: return .volume(podsPath + "/" + components[0...3].joined(separator: "/"))
        }
    }

    private func isDirectory(_ path: String) -> Bool {
        (try? Syscall.statx(nil, path))?.isDirectory == true
    }

    // MARK: Test hooks

    /// The newest watch on `path` (a linear search: for tests).
    func watchDescriptor(for path: String) -> Int32? {
        if let wd = containerWatches[path] { return wd }
        if let root = volumes[path]?.root { return root }
        var found: Int32?
        for (wd, entry) in table where entry.kind == .volume {
            guard let volume = volumePaths[entry.volume], fullPath(entry, volume: volume) == path else { continue }
            found = max(found ?? wd, wd)
        }
        return found
    }
}
