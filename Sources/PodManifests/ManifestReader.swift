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

    /// The default size limit of one manifest file (64 MiB; config `maxManifestBytes`).
    public static let defaultMaxFileBytes = 64 << 20

    /// Reads `path`: one manifest file (whatever its name), or a directory
    /// whose regular files named `*.json`, `*.yaml` or `*.yml` are read, in
    /// name order, not recursively. Hidden files (leading `.`, as temporary
    /// files of atomic writers are) and other names are ignored; symlinks are
    /// followed, and a dangling one is an error. Anything else with a manifest
    /// name (a directory, a FIFO, a socket, a device such as a symlink to
    /// `/dev/zero`) is an error too: its pods are unknown. A file larger than
    /// `maxFileBytes` is an error, read no further than that. A missing path
    /// gives no files and an error naming it.
    ///
    /// `files` lists every file read, parsed or not; `refreshedAt` is the
    /// OLDEST of their mtimes (nil with no files).
    public static func read(path: String, maxFileBytes: Int = defaultMaxFileBytes) -> ManifestSnapshot {
        var files: [String] = []
        var mtimes: [Date] = []
        var errors: [ManifestError] = []
        var pods: [Pod] = []

        func take(_ file: String) {
            files.append(file)
            let outcome = readFile(file, maxBytes: maxFileBytes)
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
                    case .success(let type):
                        // Never opened (a FIFO would block, /dev/zero never
                        // ends), but its pods are unknown: the snapshot is incomplete.
                        files.append(file)
                        errors.append(ManifestError(file: file, message: "is \(type.description), not a regular file"))
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
        case .success(let type):
            errors.append(ManifestError(file: path, message: "is \(type.description), not a regular file or a directory"))
        }

        return ManifestSnapshot(path: path, files: files, refreshedAt: mtimes.min(), errors: errors, pods: pods)
    }

    /// Whether a directory entry is read as a manifest.
    static func isManifestName(_ name: String) -> Bool {
        guard !name.hasPrefix("."), let dot = name.lastIndex(of: ".") else { return false }
        return extensions.contains(name[name.index(after: dot)...].lowercased())
    }

    // MARK: - File system

    enum FileType: CustomStringConvertible {
        case regular, directory, fifo, socket, characterDevice, blockDevice, other

        init(mode: mode_t) {
            switch mode & S_IFMT {
            case S_IFREG: self = .regular
            case S_IFDIR: self = .directory
            case S_IFIFO: self = .fifo
            case S_IFSOCK: self = .socket
            case S_IFCHR: self = .characterDevice
            case S_IFBLK: self = .blockDevice
            default: self = .other
            }
        }

        var description: String {
            switch self {
            case .regular: return "a regular file"
            case .directory: return "a directory"
            case .fifo: return "a FIFO"
            case .socket: return "a socket"
            case .characterDevice: return "a character device"
            case .blockDevice: return "a block device"
            case .other: return "a special file"
            }
        }
    }

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
        return .success(FileType(mode: info.st_mode))
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
    private static func readFile(_ file: String, maxBytes: Int) -> FileOutcome {
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
        let type = FileType(mode: info.st_mode)
        guard type == .regular else { return failure("is \(type.description), not a regular file", mtime: mtime) }

        let bytes: Data
        switch BoundedRead.readAll(fd: fd, limit: maxBytes) {
        case .success(let data):
            bytes = data
        case .failure(.tooLarge):
            return failure("is larger than the limit of \(maxBytes) bytes (maxManifestBytes)", mtime: mtime)
        case .failure(.readError(let code)):
            return failure("cannot read: \(errnoText(code))", mtime: mtime)
        }
        do {
            return FileOutcome(mtime: mtime, contents: .success(try parse(bytes, file: file)))
        } catch {
            return FileOutcome(mtime: mtime, contents: .failure(error))
        }
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
