import Foundation
import ReaperCore
import Synchronization
import SystemCalls

/// Where discovery gets a volume's walk: an earlier one still good, or a new
/// one it is told about, for the length of one discovery. Discovery walks
/// several pods at once, so it is called from several threads.
public protocol VolumeScanSource: AnyObject, Sendable {
    /// An earlier walk of `path` that may stand for a new one, or nil to walk.
    /// `tableMounts`: the mount table's mount points at or under the volume now.
    func reusableScan(of path: String, tableMounts: [String]) -> VolumeScan?
    /// A walk discovery just made.
    func walked(_ path: String, scan: VolumeScan, tableMounts: [String], directoryInodes: DirectoryInodes)
}

/// What the watcher and the kernel say about the volumes since the last
/// cycle: which may have changed, and which are covered by inotify at all.
public struct ScanCoverage: Sendable {
    /// Volumes with an event in their tree (or that appeared, went, or lost a watch).
    public var dirty: Set<String>
    /// Only a full walk is safe: signals were lost (overflow, unknown watch),
    /// the watcher is not running, or a hidden signal (atime) must be read.
    public var everythingDirty: Bool
    /// Volumes whose whole tree inotify watches now (not polled).
    public var watched: Set<String>
    /// Inodes `/proc/locks` lists a flock on: a volume with such a directory
    /// is walked again, so its lock state is never taken from the cache.
    public var flockedInodes: Set<UInt64>

    public init(dirty: Set<String>, everythingDirty: Bool, watched: Set<String>, flockedInodes: Set<UInt64>) {
        self.dirty = dirty
        self.everythingDirty = everythingDirty
        self.watched = watched
        self.flockedInodes = flockedInodes
    }
}

/// The daemon's per-volume walk results (issue 10): a volume is walked again
/// only when something may have changed it; every other volume reuses its
/// last walk. The rules keep a reused result never older than a fresh walk
/// would be, as far as the kernel reports changes (README, "What refreshes
/// what"); a full walk every `fullScanInterval` bounds what it does not.
public struct VolumeScanCache: Sendable {
    struct Entry: Sendable {
        var scan: VolumeScan
        var tableMounts: [String]
        var directoryInodes: DirectoryInodes
        /// inotify watched the whole volume before the walk began, so any
        /// change after it is an event.
        var watchedWhenWalked: Bool
    }

    /// What one cycle did, for metrics and status.
    public struct CycleCounts: Sendable, Hashable {
        public var walked = 0
        public var reused = 0
        public var fullWalk = false

        public init(walked: Int = 0, reused: Int = 0, fullWalk: Bool = false) {
            self.walked = walked
            self.reused = reused
            self.fullWalk = fullWalk
        }
    }

    public var fullScanInterval: TimeInterval
    public private(set) var lastFullWalk: Date?
    var entries: [String: Entry] = [:]

    public init(fullScanInterval: TimeInterval) {
        self.fullScanInterval = fullScanInterval
    }

    /// Volumes with a kept result.
    public var count: Int { entries.count }

    /// Starts a cycle at `now`; pass the returned source to discovery and
    /// then to `finish`. A full walk when nothing was walked yet, when the
    /// coverage says so, or when the last full walk is `fullScanInterval` old.
    public func beginCycle(coverage: ScanCoverage, now: Date) -> VolumeScanCycle {
        let due = lastFullWalk.map { now.timeIntervalSince($0) >= fullScanInterval || now < $0 } ?? true
        return VolumeScanCycle(entries: entries, coverage: coverage, fullWalk: due || coverage.everythingDirty, startedAt: now)
    }

    /// Keeps what a successful discovery saw: volumes it did not list are dropped.
    public mutating func finish(_ cycle: VolumeScanCycle) -> CycleCounts {
        let outcome = cycle.outcome.withLock { $0 }
        entries = outcome.seen
        if cycle.fullWalk { lastFullWalk = cycle.startedAt }
        return CycleCounts(walked: outcome.walkedCount, reused: outcome.reusedCount, fullWalk: cycle.fullWalk)
    }

    /// Walks the last check contradicted (it found the volume in use where
    /// the kept walk saw it idle: a change inotify cannot see, such as a
    /// hard link made from outside the tree): the next cycle walks them.
    public mutating func forget(_ paths: some Sequence<String>) {
        for path in paths { entries[path] = nil }
    }

    /// Discovery failed part way: the dirty marks of this cycle were taken
    /// but not all acted on, so nothing kept may be trusted.
    public mutating func invalidate() {
        entries = [:]
        lastFullWalk = nil
    }
}

/// One cycle's view of the cache (see `VolumeScanCache.beginCycle`).
public final class VolumeScanCycle: VolumeScanSource {
    let previous: [String: VolumeScanCache.Entry]
    let coverage: ScanCoverage
    public let fullWalk: Bool
    let startedAt: Date
    /// What the cycle kept and how, filled by discovery's threads.
    struct Outcome: Sendable {
        var seen: [String: VolumeScanCache.Entry] = [:]
        var walkedCount = 0
        var reusedCount = 0
    }
    let outcome = Mutex(Outcome())

    public var walkedCount: Int { outcome.withLock { $0.walkedCount } }
    public var reusedCount: Int { outcome.withLock { $0.reusedCount } }

    init(entries: [String: VolumeScanCache.Entry], coverage: ScanCoverage, fullWalk: Bool, startedAt: Date) {
        previous = entries
        self.coverage = coverage
        self.fullWalk = fullWalk
        self.startedAt = startedAt
    }

    public func reusableScan(of path: String, tableMounts: [String]) -> VolumeScan? {
        guard !fullWalk, let entry = previous[path], Self.mayReuse(entry, path: path, tableMounts: tableMounts, coverage: coverage) else {
            return nil
        }
        outcome.withLock {
            $0.seen[path] = entry
            $0.reusedCount += 1
        }
        return entry.scan
    }

    public func walked(_ path: String, scan: VolumeScan, tableMounts: [String], directoryInodes: DirectoryInodes) {
        let entry = VolumeScanCache.Entry(
            scan: scan, tableMounts: tableMounts, directoryInodes: directoryInodes,
            watchedWhenWalked: coverage.watched.contains(path)
        )
        outcome.withLock {
            $0.seen[path] = entry
            $0.walkedCount += 1
        }
    }

    /// A kept walk stands for a new one only if inotify covered the whole
    /// volume since before that walk and reported nothing in it, the mounts
    /// at or under it are the same, and the walk found nothing that a walk
    /// must look at again: a mount (its tree is not watched), a held lock
    /// (flock is no event), an unreadable or vanished entry.
    static func mayReuse(_ entry: VolumeScanCache.Entry, path: String, tableMounts: [String], coverage: ScanCoverage) -> Bool {
        let scan = entry.scan
        return entry.watchedWhenWalked
            && coverage.watched.contains(path)
            && !coverage.dirty.contains(path)
            && entry.tableMounts == tableMounts
            && scan.mounts.isEmpty
            && scan.lockedPaths.isEmpty
            && scan.unreadable.isEmpty
            && !scan.vanishedDuringScan
            && entry.directoryInodes.isDisjoint(with: coverage.flockedInodes)
    }
}

/// The inodes of files held with `flock` on this host, from `/proc/locks`
/// (`N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF`). Devices are left out
/// on purpose: a file system may report another device here than `statx`
/// does, and a false match only costs one more walk. Nil when the file
/// cannot be read: then every lock state is unknown.
public enum HeldLocks {
    public static func flockedInodes(path: String = "/proc/locks") -> Set<UInt64>? {
        // Read to EOF: procfs reports size 0, and a one-buffer read would cut a
        // long table short. Non-blocking, a regular file only, bounded: /proc is not ours.
        guard let bytes = try? RegularFileReader.read(path, limit: 256 << 20, followSymlinks: true) else { return nil }
        return parse(String(decoding: bytes, as: UTF8.self))
    }

    static func parse(_ text: String) -> Set<UInt64> {
        var inodes = Set<UInt64>()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).filter { $0 != "->" }
            guard fields.count >= 6, fields[1] == "FLOCK" else { continue }
            if let inode = fields[5].split(separator: ":").last.flatMap({ UInt64($0) }) { inodes.insert(inode) }
        }
        return inodes
    }
}
