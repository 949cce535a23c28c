import Foundation
import NodeDiscovery

/// One line of `/proc/self/mountinfo`, the fields the watcher needs.
struct MountRecord: Sendable, Hashable {
    /// The mount ID, the same number `statx` reports as `stx_mnt_id`.
    var id: UInt64
    var mountPoint: String
    var filesystemType: String

    /// The mounts of this namespace, read fully (NodeDiscovery's parser:
    /// /proc files come a page per read, and the table must not be cut short).
    static func read(path: String) -> [MountRecord]? {
        guard let table = try? MountTable.read(path: path) else { return nil }
        return zip(table.mountIDs, table.mounts).map {
            MountRecord(id: $0, mountPoint: $1.mountPoint, filesystemType: $1.filesystemType)
        }
    }

    /// File systems whose changes on other hosts inotify never sees, and whose
    /// trees may be huge or hang: the watcher watches their mount root only and
    /// does not descend.
    static func isRemote(_ type: String) -> Bool {
        remoteTypes.contains(type) || type.hasPrefix("fuse")
    }

    static let remoteTypes: Set<String> = [
        "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "gpfs", "9p", "afs", "beegfs",
    ]
}
