import Synchronization
import SystemCalls

/// Credential files (certificates, keys, tokens), read again only when their
/// identity changed on disk: one `open` + `statx` per use, so rotation is
/// picked up at the next request without re-parsing on every one.
final class WatchedFiles: Sendable {
    /// PEM bundles and tokens are small; a larger file is not one.
    static let sizeLimit = 1 << 20

    private let entries = Mutex<[String: (identity: FileIdentity, bytes: [UInt8])]>([:])
    /// Where the reads run: an open and a statx per request are file I/O,
    /// kept off the cooperative pool like every other.
    private let io = BlockingWork(label: "volume-reaper.credential-files")

    /// Runs `body`, which reads credential files, on the blocking executor.
    func offPool<T: Sendable>(_ body: @escaping @Sendable () throws(ClusterAccessError) -> T) async throws(ClusterAccessError) -> T {
        let result: Result<T, ClusterAccessError> = await io.run { Result { () throws(ClusterAccessError) -> T in try body() } }
        return try result.get()
    }

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
