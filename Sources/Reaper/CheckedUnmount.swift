import NodeDiscovery
import ReaperCore
import SystemCalls
import SystemPackage

extension PlanExecutor {
    /// Unmounts exactly the mount the last check saw at `mount.mountPoint`,
    /// never another one a rename put on that path since.
    ///
    /// The mount point's parent is resolved below the volume's descriptor
    /// with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` into an `O_PATH`
    /// descriptor: no symlink and no `..` can lead it out of the volume. The
    /// entry there must be a mount root with the mount ID the mount table
    /// gave at the last check; then that entry of that directory is unmounted
    /// (a mount point cannot be renamed away, so the name keeps naming it).
    /// Anything else throws `mounted`: the volume is kept.
    func unmountChecked(
        _ mount: MountInfo, table: MountTable?, location: KubeletPath, opened: KubeletPath.OpenVolume
    ) throws(RemovalError) {
        let path = mount.mountPoint
        guard let table, let index = table.mounts.lastIndex(where: { $0.mountPoint == path }), table.mountIDs[index] != 0 else {
            throw RemovalError(.mounted, path: path, detail: "its mount ID is unknown (not in the mount table of the last check)")
        }
        let expectedID = table.mountIDs[index]
        let volumePath = location.volumePath
        var held: [FileDescriptor] = []
        defer { for fd in held { Syscall.close(fd) } }
        let parent: FileDescriptor
        let name: FileName
        do {
            if path == volumePath {
                parent = opened.plugin
                name = FileName(location.volumeName)
            } else {
                guard path.hasPrefix(volumePath + "/") else {
                    throw RemovalError(.mounted, path: path, detail: "not inside the volume")
                }
                var components = path.dropFirst(volumePath.count + 1).split(separator: "/").map(String.init)
                guard let last = components.popLast(), KubeletPath.isPlainName(last) else {
                    throw RemovalError(.mounted, path: path, detail: "not a plain path inside the volume")
                }
                let volume = try Syscall.openDirectory(opened.plugin, location.volumeName)
                held.append(volume)
                parent = try Syscall.openBeneath(volume, components.joined(separator: "/"))
                held.append(parent)
                name = FileName(last)
            }
            let status = try Syscall.statx(parent, name)
            guard status.isMountRoot == true, status.mountID == expectedID else {
                throw RemovalError(
                    .mounted, path: path,
                    detail: "no longer the mount the last check saw (mount ID \(status.mountID), expected \(expectedID)): not unmounted"
                )
            }
            try Syscall.unmount(name, in: parent, path: path)
        } catch let error as RemovalError {
            throw error
        } catch let error as SystemCallError {
            throw RemovalError(.mounted, path: path, detail: "\(error)", systemCall: error)
        } catch {
            throw RemovalError(.mounted, path: path, detail: "\(error)")
        }
    }
}
