#if canImport(Glibc)
import Glibc
#endif
import SocketAPI
import SystemCalls
import SystemPackage

/// The node_exporter textfile (`metrics.textfile`): the registry's exposition
/// written to a temporary name in the same directory, synced, then renamed
/// over the file, so the collector never reads half a file. The temporary
/// name does not end in `.prom`, which the collector would read.
struct MetricsTextfile: Sendable {
    let path: String
    /// The same exposition as `/metrics`, `process_*` refreshed.
    let metrics: AgentMetricsRecorder

    func write() throws(SystemCallError) {
        var bytes: [UInt8] = []
        metrics.emit(into: &bytes)
        let slash = path.lastIndex(of: "/")!
        let directoryPath = slash == path.startIndex ? "/" : String(path[..<slash])
        let name = String(path[path.index(after: slash)...])
        let temporary = ".\(name).\(getpid()).tmp"
        let directory = try Syscall.openDirectory(nil, directoryPath)
        defer { Syscall.close(directory) }
        let fd = try Syscall.openAt(directory, temporary, flags: O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, mode: 0o644)
        do {
            defer { Syscall.close(fd) }
            try Syscall.writeAll(fd, bytes, path: directoryPath + "/" + temporary)
            try Syscall.fsync(fd, path: directoryPath + "/" + temporary)
        } catch {
            _ = unlinkat(directory.rawValue, temporary, 0)
            throw error
        }
        do {
            try Syscall.rename(temporary, to: name, in: directory)
        } catch {
            _ = unlinkat(directory.rawValue, temporary, 0)
            throw error
        }
    }
}
