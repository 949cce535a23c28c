import Dispatch
import Foundation
import ReaperCore
import Synchronization
import SystemCalls
import SystemPackage

/// Walks one volume tree, fd-relative and iteratively: never through a symlink,
/// never across a mount, without touching atimes. Reports what the reconciler
/// needs: newest timestamps, size, mounts, held locks, unreadable entries.
///
/// Open descriptors stay bounded by the tree's depth, not its width: a
/// subdirectory is opened only when the walk reaches it, so a volume with
/// thousands of sibling directories still scans under systemd's default
/// 1,024-descriptor limit (running out would make every such volume
/// inconclusive, kept forever). A directory whose subdirectories are all
/// visited is closed, so a deep chain holds two descriptors, not its depth.
/// Names stay raw bytes (`FileName`): a name that is not UTF-8 is still the
/// name every call is made with. Each open directory keeps its own name and
/// a link to its parent's, not its path: memory grows with depth × one name.
///
/// Subtrees are walked by up to `workers` threads: each statx is a path lookup
/// in the kernel, and a reap scans a volume twice (plan and last check), so on
/// a big volume the scan is most of what the agent adds to the deletion itself.
public struct VolumeScanner: Sendable {
    public var mountTable: MountTable
    /// Threads that walk one volume's subtrees at once; 1 walks on the caller's thread only.
    public var workers: Int
    /// The inodes `/proc/locks` lists a flock on, read when the scanner is
    /// made (`HeldLocks`); nil when unreadable. A directory is tested for a
    /// held flock, by trying to take it, only when its inode is listed: a
    /// test of every directory costs two calls each, and holds, for an
    /// instant, a lock that someone's `flock -n` would then be refused. A
    /// lock taken after the read is met by the removal, which flocks every
    /// directory before emptying it (`SafeRemover`). Nil: every directory is
    /// tested.
    public var flockedInodes: Set<UInt64>?

    public init(
        mountTable: MountTable, workers: Int = VolumeScanner.defaultWorkers,
        flockedInodes: Set<UInt64>? = HeldLocks.flockedInodes()
    ) {
        self.mountTable = mountTable
        self.workers = max(1, workers)
        self.flockedInodes = flockedInodes
    }

    /// Up to four, and no more than the CPUs this process may run on. Read
    /// once: the reaper makes a scanner for every volume it last-checks.
    public static let defaultWorkers = min(4, ProcessInfo.processInfo.activeProcessorCount)

    /// Scans the volume directory `name` inside the open plugin directory
    /// `parent`; `path` is its absolute path, for reports and the mount table.
    /// `skippingRootEntries`: entries of the root not walked (the `volumes/`
    /// of a pod directory, judged on their own).
    public func scan(
        volumeNamed name: String, in parent: FileDescriptor, path: String, plugin: PluginName,
        skippingRootEntries: Set<FileName> = []
    ) -> VolumeScan {
        let walks = walkTree(volumeNamed: name, in: parent, path: path, plugin: plugin, skippingRootEntries: skippingRootEntries)
        return finish(walks, path: path, plugin: plugin)
    }

    /// `scan`, also returning the inodes of the directories it opened: the
    /// daemon's scan cache matches them against the flocks `/proc/locks` lists.
    public func walk(
        volumeNamed name: String, in parent: FileDescriptor, path: String, plugin: PluginName,
        skippingRootEntries: Set<FileName> = []
    ) -> (scan: VolumeScan, directoryInodes: DirectoryInodes) {
        let walks = walkTree(volumeNamed: name, in: parent, path: path, plugin: plugin, skippingRootEntries: skippingRootEntries)
        return (finish(walks, path: path, plugin: plugin), DirectoryInodes(walks.lazy.flatMap(\.directoryInodes)))
    }

    /// Walks the tree: one `TreeWalk` per thread that took part.
    private func walkTree(
        volumeNamed name: String, in parent: FileDescriptor, path: String, plugin: PluginName, skippingRootEntries: Set<FileName>
    ) -> [TreeWalk] {
        var walk = TreeWalk(volumePath: path, plugin: plugin, skipped: skippingRootEntries, flockedInodes: flockedInodes)

        let rootStatus: FileStatus
        let root: OpenDirectory
        do throws(SystemCallError) {
            let fd = try Syscall.openDirectory(parent, name)
            do {
                rootStatus = try Syscall.statx(fd, path: path)
            } catch {
                Syscall.close(fd)
                throw error
            }
            root = OpenDirectory(fd: fd, inode: rootStatus.inode, place: TreePlace(parent: nil, name: FileName(path)), depth: 0)
        } catch {
            walk.record(error, at: path)
            return [walk]
        }
        walk.rootStatus = rootStatus
        walk.directoryInodes.append(rootStatus.inode)
        walk.tracker.note(rootStatus, countsAsEntry: false)
        if rootStatus.isMountRoot == true {
            walk.mountPaths.append(path)
            return [walk]
        }

        var frontier = walk.list(root)
        // Breadth-first on this thread until there is enough to share out.
        while workers > 1, !frontier.isEmpty, frontier.count < workers * 4 {
            let next = frontier.removeFirst()
            if let directory = walk.enter(next) { frontier += walk.list(directory) }
        }
        guard workers > 1, frontier.count > 1 else {
            walk.drain(&frontier)
            return [walk]
        }

        let shareCount = min(workers, frontier.count)
        let shares = (0..<shareCount).map { share in
            stride(from: share, to: frontier.count, by: shareCount).map { frontier[$0] }
        }
        frontier.removeAll()
        let template = TreeWalk(
            volumePath: path, plugin: plugin, skipped: skippingRootEntries, rootStatus: rootStatus, flockedInodes: flockedInodes
        )
        let results = Mutex([TreeWalk]())
        DispatchQueue.concurrentPerform(iterations: shares.count) { index in
            var share = shares[index]
            var part = template
            part.drain(&share)
            results.withLock { $0.append(part) }
        }
        return [walk] + results.withLock { $0 }
    }

    private func finish(_ walks: [TreeWalk], path: String, plugin: PluginName) -> VolumeScan {
        var tracker = TreeTracker()
        var result = VolumeScan()
        // The table sees mounts the walk cannot reach (over files, under unreadable dirs).
        var mountPaths = Set(mountTable.mounts(atOrUnder: path).map(\.mountPoint))
        var root = RootEntries()
        var csiMountDirectoryEntries: Int?
        for walk in walks {
            tracker.merge(walk.tracker)
            mountPaths.formUnion(walk.mountPaths)
            result.lockedPaths += walk.lockedPaths
            result.unreadable += walk.unreadable
            result.vanishedDuringScan = result.vanishedDuringScan || walk.vanished
            root.merge(walk.rootEntries)
            csiMountDirectoryEntries = csiMountDirectoryEntries ?? walk.csiMountDirectoryEntries
        }
        result.mounts = mountPaths.sorted().map {
            MountInfo(mountPoint: $0, filesystemType: mountTable.filesystemType(at: $0) ?? "unknown")
        }
        result.lockedPaths.sort()
        result.unreadable.sort()
        result.newestModification = tracker.newestModification.map(Self.date)
        result.newestChange = tracker.newestChange.map(Self.date)
        result.newestAccess = tracker.newestAccess.map(Self.date)
        result.bytes = tracker.bytes
        result.files = tracker.entries
        result.device = walks.first?.rootStatus?.deviceName
        result.holdsOnlyBookkeeping = Self.holdsOnlyBookkeeping(
            plugin: plugin, root: root, csiMountDirectoryEntries: csiMountDirectoryEntries
        )
        return result
    }

    private static func date(_ time: KernelTime) -> Date { Date(timeIntervalSince1970: time.secondsSince1970) }

    /// What a non-recursive removal may take: nothing but, for CSI, an empty
    /// `mount/` directory and `vol_data.json` (design §5.5).
    static func holdsOnlyBookkeeping(plugin: PluginName, root: RootEntries, csiMountDirectoryEntries: Int?) -> Bool {
        guard plugin.isCSI else { return root.isEmpty }
        if root.holdsOthers { return false }
        if let mount = root.csiMount, !(mount.isDirectory && (csiMountDirectoryEntries ?? 1) == 0) { return false }
        if let volumeData = root.csiVolumeData, !volumeData.isRegular { return false }
        return true
    }
}

/// What the volume's root directory holds, as far as the bookkeeping rule
/// asks: CSI's `mount/` and `vol_data.json`, and whether anything else.
struct RootEntries: Sendable {
    var csiMount: FileStatus?
    var csiVolumeData: FileStatus?
    var holdsOthers = false

    var isEmpty: Bool { csiMount == nil && csiVolumeData == nil && !holdsOthers }

    mutating func note(_ name: FileName, _ status: FileStatus) {
        if name == "mount" as String {
            csiMount = status
        } else if name == "vol_data.json" as String {
            csiVolumeData = status
        } else {
            holdsOthers = true
        }
    }

    mutating func merge(_ other: RootEntries) {
        csiMount = csiMount ?? other.csiMount
        csiVolumeData = csiVolumeData ?? other.csiVolumeData
        holdsOthers = holdsOthers || other.holdsOthers
    }
}

/// A directory the walk holds open. Closed when the last reference goes: the
/// directory itself once read, and each pending subdirectory that needs it to
/// be opened relative to it.
final class OpenDirectory: Sendable {
    let fd: FileDescriptor
    let inode: UInt64
    let place: TreePlace
    let depth: Int

    init(fd: FileDescriptor, inode: UInt64, place: TreePlace, depth: Int) {
        self.fd = fd
        self.inode = inode
        self.place = place
        self.depth = depth
    }

    deinit { Syscall.close(fd) }
}

/// Where a directory is: its name and its parent's place (the root's name is
/// the volume's path). Paths are built from these for reports only.
final class TreePlace: Sendable {
    let parent: TreePlace?
    let name: FileName

    init(parent: TreePlace?, name: FileName) {
        self.parent = parent
        self.name = name
    }

    var path: String {
        var names: [String] = []
        var place: TreePlace? = self
        while let current = place {
            names.append(current.name.description)
            place = current.parent
        }
        return names.reversed().joined(separator: "/")
    }
}

/// A subdirectory listed but not yet opened, with the status it had when
/// listed, so an entry swapped in between is noticed.
struct PendingDirectory: Sendable {
    let parent: OpenDirectory
    let name: FileName
    let listed: FileStatus
    var path: String { parent.place.path + "/" + name.description }
}

/// One thread's share of a scan: what it found in the directories it read.
struct TreeWalk: Sendable {
    let volumePath: String
    let plugin: PluginName
    let skipped: Set<FileName>
    var rootStatus: FileStatus?
    var tracker = TreeTracker()
    var mountPaths: [String] = []
    var lockedPaths: [String] = []
    var unreadable: [String] = []
    var vanished = false
    var rootEntries = RootEntries()
    var csiMountDirectoryEntries: Int?
    var directoryInodes: [UInt64] = []

    /// `plugin.isCSI`, asked once, not per entry.
    let isCSI: Bool
    /// `VolumeScanner.flockedInodes`.
    let flockedInodes: Set<UInt64>?

    init(
        volumePath: String, plugin: PluginName, skipped: Set<FileName> = [], rootStatus: FileStatus? = nil,
        flockedInodes: Set<UInt64>?
    ) {
        self.volumePath = volumePath
        self.plugin = plugin
        isCSI = plugin.isCSI
        self.skipped = skipped
        self.rootStatus = rootStatus
        self.flockedInodes = flockedInodes
    }

    /// Depth first: the deepest pending directory next, so only the
    /// directories on the way down (and their unfinished parents) stay open.
    mutating func drain(_ stack: inout [PendingDirectory]) {
        while let next = stack.popLast() {
            if let directory = enter(next) { stack += list(directory) }
        }
    }

    mutating func enter(_ pending: PendingDirectory) -> OpenDirectory? {
        do {
            let fd = try Syscall.openDirectory(pending.parent.fd, pending.name)
            let directory = OpenDirectory(
                fd: fd, inode: pending.listed.inode, place: TreePlace(parent: pending.parent.place, name: pending.name),
                depth: pending.parent.depth + 1
            )
            // The entry may have been swapped between listing and open.
            let opened = try Syscall.statx(fd, fields: .withoutBirthTime)
            guard opened.inode == pending.listed.inode, opened.device == pending.listed.device else {
                vanished = true
                return nil
            }
            directoryInodes.append(opened.inode)
            return directory
        } catch {
            if error.errno == .tooManySymbolicLinkLevels || error.errno == .notDirectory {
                vanished = true
            } else {
                record(error, at: pending.path)
            }
            return nil
        }
    }

    /// Reads one open directory: notes every entry, returns its subdirectories.
    mutating func list(_ directory: OpenDirectory) -> [PendingDirectory] {
        guard let rootStatus else { return [] }
        if flockedInodes?.contains(directory.inode) ?? true, let locked = try? Syscall.tryLockExclusive(directory.fd) {
            if locked {
                try? Syscall.unlock(directory.fd)
            } else {
                lockedPaths.append(directory.place.path)
            }
        }
        // Straight from the getdents buffer: a name is copied only when the
        // walk keeps it (a subdirectory, a mount, a report, the root's
        // bookkeeping), not for each entry's statx.
        var subdirectories: [PendingDirectory] = []
        var entryCount = 0
        let atRoot = directory.depth == 0
        do throws(SystemCallError) {
            try Syscall.forEachDirectoryEntry(directory.fd) { entry in
                entryCount += 1
                if atRoot, !skipped.isEmpty, skipped.contains(entry.fileName) { return }
                let status: FileStatus
                do throws(SystemCallError) {
                    status = try Syscall.statx(directory.fd, entry, fields: .withoutBirthTime)
                } catch {
                    record(error, at: directory.place.path + "/" + entry.fileName.description)
                    return
                }
                tracker.note(status, countsAsEntry: true)
                if atRoot { noteRootEntry(entry, status) }
                let crossesMount = status.isMountRoot == true || status.mountID != rootStatus.mountID || status.device != rootStatus.device
                if crossesMount {
                    mountPaths.append(directory.place.path + "/" + entry.fileName.description)
                } else if status.isDirectory {
                    subdirectories.append(PendingDirectory(parent: directory, name: entry.fileName, listed: status))
                }
            }
        } catch {
            record(error, at: directory.place.path)
            return []
        }
        if isCSI, directory.depth == 1, directory.place.name == "mount" as String {
            csiMountDirectoryEntries = entryCount
        }
        return subdirectories
    }

    /// Only CSI's bookkeeping rule looks at the root's names; for any other
    /// plugin an entry is simply something the root holds.
    private mutating func noteRootEntry(_ entry: borrowing RawDirectoryEntry, _ status: FileStatus) {
        if isCSI {
            rootEntries.note(entry.fileName, status)
        } else {
            rootEntries.holdsOthers = true
        }
    }

    mutating func record(_ error: SystemCallError, at path: String) {
        if error.isVanished { vanished = true } else { unreadable.append("\(path): \(error)") }
    }
}

/// Running maxima and sums over the entries of one tree, in kernel time so
/// the per-entry work stays integer comparisons.
struct TreeTracker: Sendable {
    var newestModification: KernelTime?
    var newestChange: KernelTime?
    var newestAccess: KernelTime?
    var bytes: UInt64 = 0
    var entries = 0

    mutating func note(_ status: FileStatus, countsAsEntry: Bool) {
        newestModification = Self.newer(newestModification, status.modified)
        newestChange = Self.newer(newestChange, status.changed)
        newestAccess = Self.newer(newestAccess, status.accessed)
        bytes += status.allocatedBytes
        if countsAsEntry { entries += 1 }
    }

    mutating func merge(_ other: TreeTracker) {
        if let time = other.newestModification { newestModification = Self.newer(newestModification, time) }
        if let time = other.newestChange { newestChange = Self.newer(newestChange, time) }
        if let time = other.newestAccess { newestAccess = Self.newer(newestAccess, time) }
        bytes += other.bytes
        entries += other.entries
    }

    private static func newer(_ current: KernelTime?, _ time: KernelTime) -> KernelTime {
        guard let current else { return time }
        return max(current, time)
    }
}
