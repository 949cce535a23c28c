#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization
import SystemCalls

/// What identifies one version of a file: a rewrite in place changes the
/// size or times, an atomic rename or symlink swap (kubelet-client-current.pem,
/// the service account's `..data`) changes the inode.
struct FileIdentity: Sendable, Hashable {
    var device: UInt64
    var inode: UInt64
    var size: UInt64
    var modified: KernelTime
    var changed: KernelTime

    /// The identity of what `path` leads to now (symlinks followed).
    static func of(_ path: String) throws(SystemCallError) -> FileIdentity {
        let fd = try Syscall.openAt(nil, path, flags: O_RDONLY | O_NONBLOCK | O_NOCTTY)
        defer { Syscall.close(fd) }
        let status = try Syscall.statx(fd, path: path)
        return FileIdentity(
            device: status.device, inode: status.inode, size: status.size,
            modified: status.modified, changed: status.changed
        )
    }
}

/// Credential files (certificates, keys, tokens), read again only when their
/// identity changed on disk: one `open` + `statx` per use, so rotation is
/// picked up at the next request without re-parsing on every one.
final class WatchedFiles: Sendable {
    /// PEM bundles and tokens are small; a larger file is not one.
    static let sizeLimit = 1 << 20

    private let entries = Mutex<[String: (identity: FileIdentity, bytes: [UInt8])]>([:])

    /// The current bytes of `material`.
    func read(_ material: CredentialMaterial) throws(ClusterAccessError) -> [UInt8] {
        switch material.content {
        case .inline(let bytes):
            return bytes
        case .file(let path):
            let identity: FileIdentity
            do {
                identity = try FileIdentity.of(path)
            } catch {
                throw material.error("cannot read \(path): \(error.errno)")
            }
            if let entry = entries.withLock({ $0[path] }), entry.identity == identity { return entry.bytes }
            // Read after taking the identity: should the file change in
            // between, the next use sees a new identity and reads it again.
            let bytes: [UInt8]
            do {
                bytes = try RegularFileReader.read(path, limit: Self.sizeLimit, followSymlinks: true)
            } catch {
                throw material.error("cannot read \(path): \(error)")
            }
            entries.withLock { $0[path] = (identity, bytes) }
            return bytes
        }
    }

    /// Forgets every file, so the next use reads each again.
    func forget() {
        entries.withLock { $0.removeAll() }
    }
}
