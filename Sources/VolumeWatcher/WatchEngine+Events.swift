import Foundation
import Logging
import ReaperCore
import SystemCalls
import SystemPackage

/// Reading the inotify descriptor and turning records into accesses and
/// changes of the watch table.
extension WatchEngine {
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
            var events: [InotifyEvent] = []
            var records = 0
            var lastUseWatch: Int32?
            VolumeWatcher.forEachRecord(in: UnsafeRawBufferPointer(rebasing: readBuffer[..<count])) { record in
                records += 1
                if InotifyMask.isDirectoryBrowse(record.mask) { return }
                // The bulk of a storm: a file used in a volume directory. One
                // touch per run of such records on one watch; the rest queue in order.
                if InotifyMask.isPlainUse(record.mask) {
                    if record.wd == lastUseWatch { return }
                    if let entry = table[record.wd], entry.kind == .volume {
                        touch(entry.volume, at: time)
                        lastUseWatch = record.wd
                        return
                    }
                }
                lastUseWatch = nil
                events.append(record.event)
            }
            ledger.noteEvents(records, at: time)
            if !events.isEmpty { backlog.append((events, time)) }
            if count < readBuffer.count / 2 { return }
        }
    }

    func ingest(_ events: [InotifyEvent], at time: Date) {
        ledger.noteEvents(events.count, at: time)
        let relevant = events.filter { !InotifyMask.isDirectoryBrowse($0.mask) }
        if !relevant.isEmpty { backlog.append((relevant, time)) }
    }

    /// Keeps the kernel queue short during long walks: our own opens of
    /// watched directories queue an event each.
    func noteDirectoryOpened() {
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
            if rescan { recoverFromLostSignals() }
        }
    }

    /// Handles one record; returns true when only a rescan can tell what happened.
    func handle(_ event: InotifyEvent, at time: Date) -> Bool {
        let mask = event.mask
        if mask & InotifyMask.queueOverflow != 0 {
            ledger.noteOverflow()
            signalsLost(at: time)
            logger.warning("inotify queue overflowed: rescanning, every volume counts as accessed now")
            return true
        }
        guard let entry = table[event.wd] else {
            if mask & InotifyMask.ignored != 0 {
                retiring.remove(event.wd)
                return false
            }
            if retiring.contains(event.wd) { return false }
            signalsLost(at: time)
            logger.notice("inotify event for an unknown watch: rescanning, every volume counts as accessed now", metadata: ["event": "\(event)"])
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
    func watchEnded(_ wd: Int32, _ entry: WatchEntry) {
        table.removeValue(forKey: wd)
        dropIndexes(wd, entry)
        switch entry.kind {
        case .volume:
            guard let volume = volumePaths[entry.volume] else { return }
            ledger.markDirty(volume)
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

    func join(_ path: String, _ name: String) -> String {
        if name.isEmpty { return path }
        if path.isEmpty { return name }
        return path + "/" + name
    }

    func fullPath(_ entry: WatchEntry, volume: String) -> String {
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
}
