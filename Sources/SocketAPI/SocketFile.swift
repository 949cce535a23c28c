#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemCalls

/// The socket file's life: its directory, a stale file from a crash, a live
/// rival, its mode and group, and its removal. Paths are absolute or relative
/// to the working directory; every error names the path.
enum SocketFile {
    /// Which file we bound, so that we only ever remove our own.
    struct Identity: Sendable, Hashable {
        var device: UInt64
        var inode: UInt64
    }

    /// What sits at the socket path before we bind.
    enum Existing: Sendable, Hashable {
        case absent
        /// A socket nobody accepts on (connect gets ECONNREFUSED): left by a crash.
        case stale
    }

    /// The socket file's mode (design §6): owner and group may connect.
    static let mode: mode_t = 0o660

    /// `sun_path` holds this many bytes and a NUL.
    static let maximumPathBytes = UnixSocketAddress.maximumPathBytes

    // MARK: Group

    /// The gid of group `name` (or a numeric gid), via `getgrnam_r`.
    static func resolveGroup(_ name: String) throws(APIServerError) -> gid_t {
        var size = max(Int(sysconf(Int32(_SC_GETGR_R_SIZE_MAX))), 1024)
        while true {
            var group = group()
            var result: UnsafeMutablePointer<group>?
            var buffer = [CChar](repeating: 0, count: size)
            let status = getgrnam_r(name, &group, &buffer, size, &result)
            if status == ERANGE, size < 1 << 20 {
                size *= 2
                continue
            }
            if status == EINTR { continue }
            if status == 0, let result { return result.pointee.gr_gid }
            if status == 0, let numeric = gid_t(name) { return numeric }
            let detail = status == 0 ? "no such group" : String(cString: strerror(status))
            throw APIServerError(code: .unknownGroup, message: "socket group '\(name)': \(detail)")
        }
    }

    // MARK: Before binding

    /// Creates the socket's parent directory (and its parents) with mode 0755
    /// when missing; an existing parent is left as it is.
    static func ensureParentDirectory(of path: String) throws(APIServerError) {
        let parent = parentDirectory(of: path)
        var status = stat()
        if lstat(parent, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else {
                throw APIServerError(code: .socketPath, message: "\(parent): the socket's parent is not a directory")
            }
            return
        }
        guard errno == ENOENT else {
            throw APIServerError(code: .socketPath, message: "\(parent): \(String(cString: strerror(errno)))")
        }
        try ensureParentDirectory(of: parent)
        do throws(SystemCallError) {
            _ = try retryingEINTR("mkdir", path: parent) { mkdir(parent, 0o755) }
        } catch where error.errno == .fileExists {
            return
        } catch {
            throw APIServerError(code: .socketPath, message: "cannot create the socket directory: \(error)")
        }
        // mkdir honours the umask; the directory must be traversable by the group.
        _ = chmod(parent, 0o755)
    }

    /// Looks at what is at `path`: nothing, or a stale socket to replace.
    /// A live socket (someone accepts on it) and anything that is not a socket
    /// are errors; neither is touched.
    static func inspect(_ path: String) throws(APIServerError) -> Existing {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            if errno == ENOENT { return .absent }
            throw APIServerError(code: .socketPath, message: "\(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw APIServerError(
                code: .notASocket,
                message: "\(path) exists and is not a socket; remove it or choose another --socket path"
            )
        }
        switch probe(path) {
        case .refused:
            return .stale
        case .vanished:
            return .absent
        case .accepting:
            throw APIServerError(code: .socketInUse, message: "another volume-reaper is listening on \(path)")
        case .failed(let error):
            throw APIServerError(code: .socketPath, message: "cannot tell whether \(path) is in use: \(error)")
        }
    }

    enum Probe: Sendable, Hashable {
        case accepting, refused, vanished
        case failed(String)
    }

    /// Tries to connect to the socket at `path` without blocking: a full
    /// backlog (EAGAIN) still means someone listens.
    static func probe(_ path: String) -> Probe {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failed("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard var address = try? makeAddress(path) else { return .failed("path too long") }
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result == 0 { return .accepting }
        switch errno {
        case EAGAIN, EINPROGRESS, EINTR: return .accepting
        case ECONNREFUSED: return .refused
        case ENOENT: return .vanished
        case let code: return .failed("connect: \(String(cString: strerror(code)))")
        }
    }

    static func makeAddress(_ path: String) throws(APIServerError) -> sockaddr_un {
        guard let address = UnixSocketAddress(path) else {
            throw APIServerError(
                code: .socketPath,
                message: "\(path): socket path too long (\(path.utf8.count) bytes, at most \(maximumPathBytes))"
            )
        }
        return address.raw
    }

    /// A name beside `path` to bind on before the socket has its mode and
    /// group; nil when it would not fit in `sun_path`.
    static func temporaryPath(for path: String) -> String? {
        let candidate = parentDirectory(of: path) + "/.volume-reaper-\(getpid()).sock"
        return candidate.utf8.count <= maximumPathBytes ? candidate : nil
    }

    // MARK: After binding

    /// Gives the socket bound at `bound` mode 0660 and `group`, then (when
    /// `bound` is a temporary name) renames it over `path`, atomically
    /// replacing a stale socket. Returns the identity of the file now at `path`.
    static func publish(bound: String, at path: String, group: gid_t?) throws(APIServerError) -> Identity {
        do throws(SystemCallError) {
            _ = try retryingEINTR("chmod", path: bound) { chmod(bound, mode) }
            if let group {
                // The owner stays the process's user (root for the daemon).
                _ = try retryingEINTR("chown", path: bound) { chown(bound, uid_t.max, group) }
            }
            if bound != path {
                _ = try retryingEINTR("rename", path: path) { rename(bound, path) }
            }
        } catch {
            if bound != path { _ = unlink(bound) }
            throw APIServerError(code: .bind, message: "cannot set up the socket \(path): \(error)")
        }
        guard let identity = identity(of: path) else {
            throw APIServerError(code: .bind, message: "\(path): the socket vanished right after binding")
        }
        return identity
    }

    static func identity(of path: String) -> Identity? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// Removes the socket file at `path` if it is still the one we bound (a
    /// successor may already have replaced it).
    static func removeIfOurs(_ path: String, identity: Identity) -> Bool {
        guard self.identity(of: path) == identity else { return false }
        return unlink(path) == 0
    }

    /// Removes a leftover file at `path` (a failed temporary bind).
    static func removeQuietly(_ path: String) {
        _ = unlink(path)
    }

    // MARK: Inherited descriptors

    /// Checks that `fd` is a stream socket, as systemd passes for `ListenStream=`.
    static func validateInherited(_ fd: Int32, path: String) throws(APIServerError) {
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else {
            throw APIServerError(
                code: .inheritedDescriptor,
                message: "inherited descriptor \(fd) for \(path) is not a socket: \(String(cString: strerror(errno)))"
            )
        }
        guard type == Int32(SOCK_STREAM.rawValue) else {
            throw APIServerError(
                code: .inheritedDescriptor,
                message: "inherited descriptor \(fd) for \(path) is not a stream socket (ListenStream=)"
            )
        }
    }

    // MARK: Paths

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }
}
