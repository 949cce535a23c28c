import Foundation

/// One line of `/proc/self/mountinfo`, the fields the watcher needs.
struct MountRecord: Sendable, Hashable {
    /// The mount ID, the same number `statx` reports as `stx_mnt_id`.
    var id: UInt64
    var mountPoint: String
    var filesystemType: String

    /// Parses mountinfo text: `id parent major:minor root mountpoint options [optional...] - fstype source superoptions`.
    static func parse(_ text: String) -> [MountRecord] {
        var records: [MountRecord] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 7, let id = UInt64(fields[0]),
                  let separator = fields.firstIndex(of: "-"), separator + 1 < fields.count else { continue }
            records.append(MountRecord(id: id, mountPoint: unescape(fields[4]), filesystemType: String(fields[separator + 1])))
        }
        return records
    }

    static func read(path: String) -> [MountRecord]? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return parse(text)
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
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
