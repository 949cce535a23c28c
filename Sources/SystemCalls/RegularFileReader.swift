#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// Reads a small file a user points the agent at (policy, config, manifests)
/// without trusting what is there: opened non-blocking (a FIFO or a device
/// cannot stall the open), checked with `fstat` to be a regular file, and read
/// only up to a size limit (a sparse terabyte or `/dev/zero` cannot exhaust
/// memory).
public enum RegularFileReader {
    /// Why a file was not read.
    public enum ReadError: Error, Sendable, Equatable, CustomStringConvertible {
        /// open/fstat/read failed.
        case system(SystemCallError)
        /// Something other than a regular file: the kind, e.g. `a FIFO`.
        case notRegular(kind: String)
        /// Larger than the limit (bytes).
        case tooLarge(limit: Int)

        public var description: String {
            switch self {
            case .system(let error): return "\(error.errno)"
            case .notRegular(let kind): return "\(kind), not a regular file"
            case .tooLarge(let limit): return "larger than \(RegularFileReader.formatSize(limit))"
            }
        }
    }

    /// The bytes of the regular file at `path` (relative to `directory` when
    /// given), at most `limit` of them. `followSymlinks: false` refuses a
    /// symlink in the last component (`O_NOFOLLOW`); true lets a symlink that
    /// config management made lead to a regular file.
    public static func read(
        _ path: String, relativeTo directory: FileDescriptor? = nil, limit: Int, followSymlinks: Bool
    ) throws(ReadError) -> [UInt8] {
        let (fd, status) = try openRegular(path, relativeTo: directory, followSymlinks: followSymlinks)
        defer { Syscall.close(fd) }
        guard status.size <= UInt64(max(limit, 0)) else { throw .tooLarge(limit: limit) }

        // The size may change while reading (or lie, as in /proc): read at most limit + 1.
        var bytes = [UInt8](repeating: 0, count: Int(status.size) + 1)
        var filled = 0
        while true {
            if filled == bytes.count {
                guard bytes.count <= limit else { throw .tooLarge(limit: limit) }
                bytes.append(contentsOf: repeatElement(0, count: min(max(bytes.count, 4096), limit + 1 - bytes.count)))
            }
            let start = filled
            let result: Result<Int, SystemCallError> = bytes.withUnsafeMutableBytes { buffer in
                Result { () throws(SystemCallError) -> Int in
                    try Syscall.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]), path: path)
                }
            }
            let count: Int
            switch result {
            case .success(let read): count = read
            case .failure(let error): throw .system(error)
            }
            if count == 0 { break }
            filled += count
        }
        guard filled <= limit else { throw .tooLarge(limit: limit) }
        bytes.removeSubrange(filled...)
        return bytes
    }

    /// The first `maxBytes` (at most) of the regular file `path` (relative to
    /// `directory` when given), never following a symlink: for files of trees
    /// the agent does not own (cgroupfs, /proc), where only the start matters
    /// and a FIFO or device planted in place of a file must not block. Files
    /// there may say size 0 (/proc), so this reads until `maxBytes` or the end.
    public static func readStart(
        _ path: String, relativeTo directory: FileDescriptor? = nil, maxBytes: Int
    ) throws(ReadError) -> [UInt8] {
        let fd = try openRegular(path, relativeTo: directory, followSymlinks: false).fd
        defer { Syscall.close(fd) }
        var bytes = [UInt8](repeating: 0, count: max(maxBytes, 0))
        var filled = 0
        while filled < bytes.count {
            let start = filled
            let result: Result<Int, SystemCallError> = bytes.withUnsafeMutableBytes { buffer in
                Result { () throws(SystemCallError) -> Int in
                    try Syscall.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]), path: path)
                }
            }
            switch result {
            case .success(0): return Array(bytes[..<filled])
            case .success(let count): filled += count
            case .failure(let error): throw .system(error)
            }
        }
        return bytes
    }

    /// Opens `path` non-blocking and checks with `fstat` that it is a regular file.
    private static func openRegular(
        _ path: String, relativeTo directory: FileDescriptor?, followSymlinks: Bool
    ) throws(ReadError) -> (fd: FileDescriptor, status: FileStatus) {
        let flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | (followSymlinks ? 0 : O_NOFOLLOW)
        let fd: FileDescriptor
        do {
            fd = try Syscall.openAt(directory, path, flags: flags)
        } catch where error.errno == .tooManySymbolicLinkLevels && !followSymlinks {
            throw .notRegular(kind: "a symlink")
        } catch {
            throw .system(error)
        }
        let status: FileStatus
        do {
            status = try Syscall.statx(fd, path: path)
        } catch {
            Syscall.close(fd)
            throw .system(error)
        }
        guard status.isRegular else {
            Syscall.close(fd)
            throw .notRegular(kind: kind(of: status.mode))
        }
        return (fd, status)
    }

    /// A file type in words, for messages.
    public static func kind(of mode: UInt32) -> String {
        switch mode & UInt32(S_IFMT) {
        case UInt32(S_IFDIR): return "a directory"
        case UInt32(S_IFIFO): return "a FIFO"
        case UInt32(S_IFSOCK): return "a socket"
        case UInt32(S_IFCHR): return "a character device"
        case UInt32(S_IFBLK): return "a block device"
        case UInt32(S_IFLNK): return "a symlink"
        case UInt32(S_IFREG): return "a regular file"
        default: return "an unknown kind of file"
        }
    }

    /// `1 MiB`, `64 MiB`, `512 KiB`, `100 bytes`.
    public static func formatSize(_ bytes: Int) -> String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}
