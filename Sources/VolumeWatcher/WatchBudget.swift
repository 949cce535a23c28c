import Foundation
import SystemCalls
import SystemPackage

/// How many inotify watches the watcher would set on a kubelet tree, for
/// `volume-reaper check`: the directories its walk watches (`pods` (or the root while it has none),
/// every pod, `volumes`, plugin and volume directory and every directory
/// inside a volume), counted by the same roles, without following symlinks
/// and without descending into network mounts (their root only).
public enum WatchBudget {
    public struct Count: Sendable, Hashable {
        /// Directories the watcher would watch.
        public var directories: Int
        /// Directories that could not be opened or listed (not counted below them).
        public var unreadable: Int
    }

    public static func directoriesToWatch(kubeletRoot: String, mountInfoPath: String = "/proc/self/mountinfo") -> Count {
        let remote = Set((MountRecord.read(path: mountInfoPath) ?? []).filter { MountRecord.isRemote($0.filesystemType) }.map(\.mountPoint))
        var count = Count(directories: 0, unreadable: 0)
        // Depth-first with one descriptor per level, as the watcher walks.
        struct Frame {
            var fd: FileDescriptor
            var path: String
            var role: WatchRole
            var entries: [DirectoryEntry]
            var next = 0
        }
        func enter(_ parent: FileDescriptor?, _ name: FileName, path: String, role: WatchRole) -> Frame? {
            guard let fd = try? Syscall.openDirectory(parent, name) else {
                count.unreadable += 1
                return nil
            }
            count.directories += 1
            guard !remote.contains(path) else { return Frame(fd: fd, path: path, role: role, entries: []) }
            guard let entries = try? Syscall.readDirectory(fd, path: path) else {
                count.unreadable += 1
                return Frame(fd: fd, path: path, role: role, entries: [])
            }
            return Frame(fd: fd, path: path, role: role, entries: entries)
        }
        // `<root>` itself is watched only while `<root>/pods` does not exist.
        let pods = kubeletRoot + "/pods"
        let start = (try? Syscall.statx(nil, pods))?.isDirectory == true ? (pods, WatchRole.pods) : (kubeletRoot, .kubeletRoot)
        guard let first = enter(nil, FileName(start.0), path: start.0, role: start.1) else { return count }
        var stack = [first]
        while let top = stack.indices.last {
            guard stack[top].next < stack[top].entries.count else {
                Syscall.close(stack[top].fd)
                stack.removeLast()
                continue
            }
            let entry = stack[top].entries[stack[top].next]
            stack[top].next += 1
            let childPath = stack[top].path + "/" + entry.name.description
            guard let role = WatchEngine.childRole(of: stack[top].role, name: entry.name.description, path: childPath) else { continue }
            switch entry.type {
            case .directory: break
            case .unknown:
                guard (try? Syscall.statx(stack[top].fd, entry.name))?.isDirectory == true else { continue }
            default: continue
            }
            if let frame = enter(stack[top].fd, entry.name, path: childPath, role: role) { stack.append(frame) }
        }
        return count
    }
}
