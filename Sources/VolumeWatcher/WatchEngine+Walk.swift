import Foundation
import Logging
import ReaperCore
import SystemCalls
import SystemPackage

/// Setting watches: the walk that watches each directory before listing it,
/// the watch table's indexes, and the volumes they belong to.
extension WatchEngine {
    // MARK: The walk

    struct Frame {
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
    func enter(parent: FileDescriptor?, name: FileName, path: String, role: WatchRole) -> Frame? {
        noteDirectoryOpened()
        if case .volume(let volume) = role, volume == path { discovered(volume) }
        // Most directories of a volume tree have no subdirectory: watch them,
        // then look, and open and list only those that have one. A refused
        // watch takes the long way below, which says why.
        var watched = false
        if let parent, name.string != nil, case .watched = addWatch(path: path, role: role) {
            if hasNoSubdirectories(parent: parent, name: name) { return nil }
            watched = true
        }
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
        if !watched, case .refused(let reason, let exhausted) = addWatch(
            path: name.string == nil ? "/proc/self/fd/\(fd.rawValue)/." : path, role: role
        ) {
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

    /// Whether the directory `name` in `parent`, watched already, has no
    /// subdirectory now: its link count is 2 (itself and `.`) on a file system
    /// known to count subdirectories' `..` in it. A subdirectory made after
    /// the watch was set is an event. Anything unsure says no.
    func hasNoSubdirectories(parent: FileDescriptor, name: FileName) -> Bool {
        guard let status = try? Syscall.statx(parent, name), status.isDirectory, status.linkCount == 2,
              let type = mountTypes[status.mountID] else { return false }
        return Self.linkCountingFileSystems.contains(type)
    }

    /// File systems whose directory link count is 2 + subdirectories (ext4 sets
    /// 1 past 65,000 subdirectories, which says nothing); btrfs, overlayfs and
    /// network file systems do not count them.
    static let linkCountingFileSystems: Set<String> = ["ext2", "ext3", "ext4", "xfs", "tmpfs"]

    enum WatchOutcome {
        case watched(Int32)
        /// `exhausted`: the budget or the kernel's limit, not a problem with this directory.
        case refused(String, exhausted: Bool)
    }

    func addWatch(path: String, role: WatchRole) -> WatchOutcome {
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

    func register(_ wd: Int32, path: String, role: WatchRole) {
        if let old = table[wd] {
            // Same inode under another path (moved, or bind-mounted): the newest path wins.
            dropIndexes(wd, old)
        }
        retiring.remove(wd)
        switch role {
        case .volume(let volume):
            if volumes[volume] == nil { discovered(volume) }
            guard let id = volumes[volume]?.id else { return }
            let relative = path == volume ? "" : String(path[path.utf8.index(path.utf8.startIndex, offsetBy: volume.utf8.count + 1)...])
            table[wd] = WatchEntry(kind: .volume, volume: id, generation: generation, path: relative)
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
    func dropIndexes(_ wd: Int32, _ entry: WatchEntry) {
        switch entry.kind {
        case .volume:
            if let volume = volumePaths[entry.volume], volumes[volume]?.root == wd { volumes[volume]?.root = nil }
        case .manifests:
            manifestWatches.removeValue(forKey: wd)
        default:
            if containerWatches[entry.path] == wd { containerWatches.removeValue(forKey: entry.path) }
        }
        if polledCount > 0 { coverageRetry = true }
    }

    /// Drops a watch we no longer want; its `IN_IGNORED` arrives later.
    func retire(_ wd: Int32) {
        guard let entry = table.removeValue(forKey: wd) else { return }
        dropIndexes(wd, entry)
        if let inotify { try? Syscall.inotifyRemoveWatch(inotify, wd) }
        retiring.insert(wd)
    }

    /// A directory moved out of its place (`relative` to the volume root): its
    /// watches no longer say where it is.
    func retireSubtree(_ relative: String, in volume: String) {
        guard let id = volumes[volume]?.id else { return }
        let prefix = relative + "/"
        for wd in table.watchDescriptors(where: { $0.volume == id && ($0.path == relative || $0.path.hasPrefix(prefix)) }) {
            retire(wd)
        }
    }

    // MARK: Volumes

    func discovered(_ volume: String) {
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

    func forgetVolume(_ volume: String) {
        forgetVolumes([volume])
    }

    /// Forgets volumes and retires their watches, in one scan of the table.
    func forgetVolumes(_ gone: some Collection<String>) {
        let states = gone.compactMap { volumes[$0] }
        guard !states.isEmpty else { return }
        let ids = Set(states.map(\.id))
        for wd in table.watchDescriptors(where: { $0.kind == .volume && ids.contains($0.volume) }) { retire(wd) }
        for volume in gone {
            guard let state = volumes.removeValue(forKey: volume) else { continue }
            volumePaths.removeValue(forKey: state.id)
            if state.polled { polledCount -= 1 }
            pendingTouches.removeValue(forKey: state.id)
            ledger.forget(volume)
            logger.debug("volume gone", metadata: ["path": "\(volume)"])
        }
    }

    func forgetSubtree(_ path: String) {
        let prefix = path + "/"
        forgetVolumes(volumes.keys.filter { $0.hasPrefix(prefix) })
        for (watched, wd) in containerWatches where watched == path || watched.hasPrefix(prefix) { retire(wd) }
    }

    // MARK: Crawls

    func crawl(skipKnown: Bool) {
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
}
