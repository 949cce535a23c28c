import Foundation
import ReaperCore
import SystemCalls
import SystemPackage

/// Walks one volume tree, fd-relative and iteratively: never through a symlink,
/// never across a mount, without touching atimes. Reports what the reconciler
/// needs: newest timestamps, size, mounts, held locks, unreadable entries.
public struct VolumeScanner: Sendable {
    public var mountTable: MountTable

    public init(mountTable: MountTable) {
        self.mountTable = mountTable
    }

    /// Scans the volume directory `name` inside the open plugin directory
    /// `parent`; `path` is its absolute path, for reports and the mount table.
    public func scan(volumeNamed name: String, in parent: FileDescriptor, path: String, plugin: PluginName) -> VolumeScan {
        var result = VolumeScan()
        var mountPoints = Set<String>()
        func addMount(_ mountPath: String) {
            guard mountPoints.insert(mountPath).inserted else { return }
            result.mounts.append(MountInfo(mountPoint: mountPath, filesystemType: mountTable.filesystemType(at: mountPath) ?? "unknown"))
        }
        // The table sees mounts the walk cannot reach (over files, under unreadable dirs).
        for mount in mountTable.mounts(atOrUnder: path) { addMount(mount.mountPoint) }

        let root: FileDescriptor
        let rootStatus: FileStatus
        do {
            root = try Syscall.openDirectory(parent, name)
            rootStatus = try Syscall.statx(root, path: path)
        } catch {
            if error.isVanished { result.vanishedDuringScan = true } else { result.unreadable.append("\(path): \(error)") }
            return result
        }
        var tracker = TreeTracker()
        tracker.note(rootStatus, countsAsEntry: false)
        if rootStatus.isMountRoot == true {
            addMount(path)
        }

        var rootEntryNames: [String: FileStatus] = [:]
        var csiMountDirectoryEntries: Int?
        // Directories still to read: descriptor, path, and whether it is the volume root.
        var pending: [(fd: FileDescriptor, path: String, depth: Int)] = []
        if rootStatus.isMountRoot == true {
            Syscall.close(root)
        } else {
            pending.append((root, path, 0))
        }
        while let directory = pending.popLast() {
            defer { Syscall.close(directory.fd) }
            if let locked = try? Syscall.tryLockExclusive(directory.fd, path: directory.path) {
                if locked {
                    try? Syscall.unlock(directory.fd, path: directory.path)
                } else {
                    result.lockedPaths.append(directory.path)
                }
            }
            let entries: [DirectoryEntry]
            do {
                entries = try Syscall.readDirectory(directory.fd, path: directory.path)
            } catch {
                if error.isVanished { result.vanishedDuringScan = true } else { result.unreadable.append("\(directory.path): \(error)") }
                continue
            }
            if plugin.isCSI, directory.depth == 1, directory.path == path + "/mount" {
                csiMountDirectoryEntries = entries.count
            }
            for entry in entries {
                let entryPath = directory.path + "/" + entry.name
                let status: FileStatus
                do {
                    status = try Syscall.statx(directory.fd, entry.name)
                } catch {
                    if error.isVanished { result.vanishedDuringScan = true } else { result.unreadable.append("\(entryPath): \(error)") }
                    continue
                }
                tracker.note(status, countsAsEntry: true)
                if directory.depth == 0 { rootEntryNames[entry.name] = status }
                let crossesMount = status.isMountRoot == true || status.mountID != rootStatus.mountID || status.device != rootStatus.device
                if crossesMount {
                    addMount(entryPath)
                    continue
                }
                guard status.isDirectory else { continue }
                do {
                    let child = try Syscall.openDirectory(directory.fd, entry.name)
                    // The entry may have been swapped between statx and open.
                    let opened = try Syscall.statx(child, path: entryPath)
                    guard opened.inode == status.inode, opened.device == status.device else {
                        Syscall.close(child)
                        result.vanishedDuringScan = true
                        continue
                    }
                    pending.append((child, entryPath, directory.depth + 1))
                } catch {
                    if error.isVanished || error.errno == .tooManySymbolicLinkLevels || error.errno == .notDirectory {
                        result.vanishedDuringScan = true
                    } else {
                        result.unreadable.append("\(entryPath): \(error)")
                    }
                }
            }
        }
        result.newestModification = tracker.newestModification
        result.newestChange = tracker.newestChange
        result.newestAccess = tracker.newestAccess
        result.bytes = tracker.bytes
        result.files = tracker.entries
        result.holdsOnlyBookkeeping = Self.holdsOnlyBookkeeping(
            plugin: plugin, rootEntries: rootEntryNames, csiMountDirectoryEntries: csiMountDirectoryEntries
        )
        return result
    }

    /// What a non-recursive removal may take: nothing but, for CSI, an empty
    /// `mount/` directory and `vol_data.json` (design §5.5).
    static func holdsOnlyBookkeeping(plugin: PluginName, rootEntries: [String: FileStatus], csiMountDirectoryEntries: Int?) -> Bool {
        guard plugin.isCSI else { return rootEntries.isEmpty }
        for (name, status) in rootEntries {
            switch name {
            case "mount" where status.isDirectory && (csiMountDirectoryEntries ?? 1) == 0: continue
            case "vol_data.json" where status.isRegular: continue
            default: return false
            }
        }
        return true
    }
}

/// Running maxima and sums over the entries of one tree.
struct TreeTracker {
    var newestModification: Date?
    var newestChange: Date?
    var newestAccess: Date?
    var bytes: UInt64 = 0
    var entries = 0

    mutating func note(_ status: FileStatus, countsAsEntry: Bool) {
        newestModification = max(newestModification, status.modified)
        newestChange = max(newestChange, status.changed)
        newestAccess = max(newestAccess, status.accessed)
        bytes += status.allocatedBytes
        if countsAsEntry { entries += 1 }
    }

    private func max(_ current: Date?, _ time: KernelTime) -> Date {
        let date = Date(timeIntervalSince1970: time.secondsSince1970)
        guard let current else { return date }
        return Swift.max(current, date)
    }
}
