import Foundation
import Logging
import ReaperCore
import SystemCalls
import SystemPackage

/// The manifests watch, the mount table, and what a path under the pods
/// directory is.
extension WatchEngine {
    // MARK: Manifests

    func setupManifestWatch() {
        guard let manifestsPath, let inotify else { return }
        manifestWatchMissing = false
        let isDirectory = (try? Syscall.statxFollowing(manifestsPath))?.isDirectory ?? false
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
    func refreshMounts() -> [MountRecord]? {
        guard let records = MountRecord.read(path: options.mountInfoPath) else { return nil }
        mountTypes = Dictionary(records.map { ($0.id, $0.filesystemType) }, uniquingKeysWith: { $1 })
        unknownMountIDs = []
        resolvedPodsPath = (try? Syscall.realPath(podsPath)) ?? podsPath
        return records
    }

    func isRemote(mountID: UInt64) -> Bool {
        if mountTypes[mountID] == nil, !unknownMountIDs.contains(mountID) {
            refreshMounts()
            if mountTypes[mountID] == nil { unknownMountIDs.insert(mountID) }
        }
        guard let type = mountTypes[mountID] else { return false }
        return MountRecord.isRemote(type)
    }

    /// Mounts under the pods directory, their mount points written the way we name paths.
    func podMountSet(_ records: [MountRecord]) -> Set<MountRecord> {
        let prefix = resolvedPodsPath + "/"
        var result = Set<MountRecord>()
        for var record in records where record.mountPoint.hasPrefix(prefix) {
            record.mountPoint = podsPath + record.mountPoint.dropFirst(resolvedPodsPath.utf8.count)
            result.insert(record)
        }
        return result
    }

    func setPodMounts(_ mounts: Set<MountRecord>) {
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

    func isDirectory(_ path: String) -> Bool {
        (try? Syscall.statx(nil, path))?.isDirectory == true
    }

    // MARK: Test hooks

    /// The newest watch on `path` (a linear search: for tests).
    func watchDescriptor(for path: String) -> Int32? {
        if let wd = containerWatches[path] { return wd }
        if let root = volumes[path]?.root { return root }
        return table.watchDescriptors(where: { entry in
            guard entry.kind == .volume, let volume = volumePaths[entry.volume] else { return false }
            return fullPath(entry, volume: volume) == path
        }).last
    }
}
