#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ReaperCore

/// Reads the node's pod manifests (`--manifests`) into a `ManifestSnapshot`.
///
/// Fails closed: a file with any problem contributes no pods and an error, so
/// the snapshot is incomplete and cannot vouch for orphans; the other files
/// still count. The snapshot is as fresh as its stalest file.
public enum ManifestReader {
    /// The extensions of manifest files in a directory (compared case-insensitively).
    public static let extensions: Set<String> = ["json", "yaml", "yml"]

    /// Reads `path`: one manifest file (whatever its name), or a directory
    /// whose regular files named `*.json`, `*.yaml` or `*.yml` are read, in
    /// name order, not recursively. Hidden files (leading `.`, as temporary
    /// files of atomic writers are) and other names are ignored; symlinks are
    /// followed, and a dangling one is an error. A missing path gives no files
    /// and an error naming it.
    ///
    /// `files` lists every file read, parsed or not; `refreshedAt` is the
    /// OLDEST of their mtimes (nil with no files).
    public static func read(path: String) -> ManifestSnapshot {
        var files: [String] = []
        var mtimes: [Date] = []
        var errors: [ManifestError] = []
        var pods: [Pod] = []

        func take(_ file: String) {
            files.append(file)
            let outcome = readFile(file)
            if let mtime = outcome.mtime { mtimes.append(mtime) }
            switch outcome.contents {
            case .failure(let error):
                errors.append(error)
            case .success(let filePods):
                pods.append(contentsOf: filePods)
            }
        }

        switch fileType(path) {
        case .failure(let error):
            errors.append(ManifestError(file: path, message: error.message))
        case .success(.directory):
            switch listDirectory(path) {
            case .failure(let error):
                errors.append(ManifestError(file: path, message: error.message))
            case .success(let names):
                for name in names.sorted() where isManifestName(name) {
                    let file = join(path, name)
                    switch fileType(file) {
                    case .success(.regular):
                        take(file)
                    case .success:
                        continue // a directory or special file that happens to be named *.yaml
                    case .failure(let error):
                        // Dangling symlink, or gone between listing and reading:
                        // its pods are unknown, so the snapshot is incomplete.
                        files.append(file)
                        let message = error.message == "does not exist" ? "disappeared while the directory was read" : error.message
                        errors.append(ManifestError(file: file, message: message))
                    }
                }
            }
        case .success(.regular):
            take(path)
        case .success(.other):
            errors.append(ManifestError(file: path, message: "is not a regular file or a directory"))
        }

        return ManifestSnapshot(path: path, files: files, refreshedAt: mtimes.min(), errors: errors, pods: pods)
    }

    /// Whether a directory entry is read as a manifest.
    static func isManifestName(_ name: String) -> Bool {
        guard !name.hasPrefix("."), let dot = name.lastIndex(of: ".") else { return false }
        return extensions.contains(name[name.index(after: dot)...].lowercased())
    }

    // MARK: - File system

    enum FileType { case regular, directory, other }

    private static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private static func errnoText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// The type of what `path` names, following symlinks.
    private static func fileType(_ path: String) -> Result<FileType, Problem> {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            var link = stat()
            if code == ENOENT, lstat(path, &link) == 0 {
                return .failure(Problem("is a dangling symlink"))
            }
            return .failure(Problem(code == ENOENT ? "does not exist" : errnoText(code)))
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .success(.regular)
        case S_IFDIR: return .success(.directory)
        default: return .success(.other)
        }
    }

    private static func listDirectory(_ path: String) -> Result<[String], Problem> {
        guard let directory = opendir(path) else {
            return .failure(Problem("cannot list: \(errnoText(errno))"))
        }
        defer { closedir(directory) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                if errno != 0 { return .failure(Problem("cannot list: \(errnoText(errno))")) }
                break
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return .success(names)
    }

    private struct FileOutcome {
        var mtime: Date?
        var contents: Result<[Pod], ManifestError>
    }

    /// Opens, checks and reads one file; its mtime is taken from the same open
    /// file as its contents, so a file replaced meanwhile cannot mix the two.
    private static func readFile(_ file: String) -> FileOutcome {
        func failure(_ message: String, mtime: Date? = nil) -> FileOutcome {
            FileOutcome(mtime: mtime, contents: .failure(ManifestError(file: file, message: message)))
        }
        // O_NONBLOCK: a FIFO swapped in after the type check must not hang us.
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let code = errno
            var info = stat()
            let mtime = stat(file, &info) == 0 ? modificationDate(info) : nil
            return failure("cannot open: \(errnoText(code))", mtime: mtime)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return failure("cannot stat: \(errnoText(errno))") }
        let mtime = modificationDate(info)
        guard info.st_mode & S_IFMT == S_IFREG else { return failure("is not a regular file", mtime: mtime) }

        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size) + 1)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return failure("cannot read: \(errnoText(errno))", mtime: mtime)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return failure("is not UTF-8 text", mtime: mtime)
        }
        do {
            return FileOutcome(mtime: mtime, contents: .success(try parse(text, file: file)))
        } catch {
            return FileOutcome(mtime: mtime, contents: .failure(error))
        }
    }

    /// `read(2)`; the name `read` is taken by `read(path:)` in this scope.
    private static func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(fd, buffer, count)
        #else
        Darwin.read(fd, buffer, count)
        #endif
    }

    private static func modificationDate(_ info: stat) -> Date {
        #if canImport(Darwin)
        let time = info.st_mtimespec
        #else
        let time = info.st_mtim
        #endif
        return Date(timeIntervalSince1970: TimeInterval(time.tv_sec) + TimeInterval(time.tv_nsec) / 1_000_000_000)
    }
}
