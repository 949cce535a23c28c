import SocketAPI
import SystemCalls
import SystemPackage

/// The node_exporter textfile (`metrics.textfile`): the registry's exposition
/// written to a temporary name in the same directory, synced, then renamed
/// over the file, so the collector never reads half a file. The temporary
/// name does not end in `.prom`, which the collector would read.
///
/// Others may write to the collector directory, so the temporary file is
/// never one they prepared: a random name, created with `O_EXCL|O_NOFOLLOW`
/// (whatever sits at that name, a FIFO or a symlink, fails the open instead of
/// being opened or followed), `O_NONBLOCK` so no open can wait, and checked
/// with `fstat` to be the regular file just made.
struct MetricsTextfile: Sendable {
    let path: String
    /// The same exposition as `/metrics`, `process_*` refreshed.
    let metrics: AgentMetricsRecorder
    /// Names tried before giving up: a name taken is another random draw.
    static let attempts = 8

    func write() throws {
        var bytes: [UInt8] = []
        metrics.emit(into: &bytes)
        let slash = path.lastIndex(of: "/")!
        let directoryPath = slash == path.startIndex ? "/" : String(path[..<slash])
        let name = String(path[path.index(after: slash)...])
        let directory = try Syscall.openDirectory(nil, directoryPath)
        defer { Syscall.close(directory) }
        let (temporary, fd) = try createTemporary(for: name, in: directory, directoryPath: directoryPath)
        let temporaryPath = directoryPath + "/" + temporary
        do {
            defer { Syscall.close(fd) }
            let status = try Syscall.statx(fd, path: temporaryPath)
            guard status.isRegular else {
                throw TextfileError(description: "\(temporaryPath): \(RegularFileReader.kind(of: status.mode)), not the regular file just created")
            }
            try Syscall.writeAll(fd, bytes, path: temporaryPath)
            try Syscall.fsync(fd, path: temporaryPath)
            try Syscall.rename(temporary, to: name, in: directory)
        } catch {
            try? Syscall.unlinkAt(directory, temporary, removeDirectory: false)
            throw error
        }
    }

    /// A new file under an unpredictable name beside `name`.
    private func createTemporary(
        for name: String, in directory: FileDescriptor, directoryPath: String
    ) throws(SystemCallError) -> (name: String, fd: FileDescriptor) {
        var attempt = 0
        while true {
            let temporary = ".\(name).\(String(UInt64.random(in: .min ... .max), radix: 36)).tmp"
            do {
                let fd = try Syscall.openAt(
                    directory, temporary, flags: OpenFlags.writeOnly | OpenFlags.create | OpenFlags.exclusive | OpenFlags.noFollow | OpenFlags.nonBlocking | OpenFlags.noControllingTerminal, mode: 0o644
                )
                return (temporary, fd)
            } catch where error.errno == .fileExists && attempt < Self.attempts {
                attempt += 1
            }
        }
    }
}

/// The temporary file turned out not to be the regular file it was made as.
struct TextfileError: Error, CustomStringConvertible {
    var description: String
}
