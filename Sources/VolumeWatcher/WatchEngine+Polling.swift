import Foundation
import Logging
import ReaperCore
import SystemCalls
import SystemPackage

/// Volumes inotify cannot cover (watch limit, unreadable directories) are
/// polled: a change of their tree fingerprint is an access.
extension WatchEngine {
    // MARK: Poll fallback

    func markPolled(_ volume: String, reason: String) {
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

    func unpoll(_ volume: String) {
        guard volumes[volume]?.polled == true else { return }
        volumes[volume]?.polled = false
        polledCount -= 1
        ledger.setPolled(volume, false)
    }

    /// Watches were freed: try to cover polled volumes with inotify again.
    func retryCoverage() {
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
}
