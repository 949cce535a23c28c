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
    static let mode: UInt32 = 0o660

    /// `sun_path` holds this many bytes and a NUL.
    static let maximumPathBytes = UnixSocketAddress.maximumPathBytes

    // MARK: Group

    /// The gid of group `name` (or a numeric gid), via `getgrnam_r`.
    static func resolveGroup(_ name: String) throws(APIServerError) -> UInt32 {
        let found: UInt32?
        do {
            found = try GroupDatabase.groupID(named: name)
        } catch {
            throw APIServerError(code: .unknownGroup, message: "socket group '\(name)': \(error.errno)")
        }
        guard let gid = found ?? UInt32(name) else {
            throw APIServerError(code: .unknownGroup, message: "socket group '\(name)': no such group")
        }
        return gid
    }

    // MARK: Before binding

    /// Creates the socket's parent directory (and its parents) with mode 0755
    /// when missing; an existing parent is left as it is.
    static func ensureParentDirectory(of path: String) throws(APIServerError) {
        let parent = parentDirectory(of: path)
        let existing: FileStatus?
        do {
            existing = try Syscall.statx(nil, parent)
        } catch where error.isVanished {
            existing = nil
        } catch {
            throw APIServerError(code: .socketPath, message: "\(parent): \(error.errno)")
        }
        if let existing {
            guard existing.isDirectory else {
                throw APIServerError(code: .socketPath, message: "\(parent): the socket's parent is not a directory")
            }
            return
        }
        try ensureParentDirectory(of: parent)
        do throws(SystemCallError) {
            try Syscall.makeDirectory(parent, mode: 0o755)
        } catch where error.errno == .fileExists {
            return
        } catch {
            throw APIServerError(code: .socketPath, message: "cannot create the socket directory: \(error)")
        }
        // mkdir honours the umask; the directory must be traversable by the group.
        try? Syscall.changeMode(parent, to: 0o755)
    }

    /// Looks at what is at `path`: nothing, or a stale socket to replace.
    /// A live socket (someone accepts on it) and anything that is not a socket
    /// are errors; neither is touched.
    static func inspect(_ path: String) throws(APIServerError) -> Existing {
        let status: FileStatus
        do {
            status = try Syscall.statx(nil, path)
        } catch where error.isVanished {
            return .absent
        } catch {
            throw APIServerError(code: .socketPath, message: "\(path): \(error.errno)")
        }
        guard status.isSocket else {
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
        guard let address = try? makeAddress(path) else { return .failed("path too long") }
        do {
            switch try Syscall.probeUnixSocket(address) {
            case .accepting: return .accepting
            case .refused: return .refused
            case .vanished: return .vanished
            }
        } catch {
            return .failed("\(error.call): \(error.errno)")
        }
    }

    static func makeAddress(_ path: String) throws(APIServerError) -> UnixSocketAddress {
        guard let address = UnixSocketAddress(path) else {
            throw APIServerError(
                code: .socketPath,
                message: "\(path): socket path too long (\(path.utf8.count) bytes, at most \(maximumPathBytes))"
            )
        }
        return address
    }

    /// A name beside `path` to bind on before the socket has its mode and
    /// group; nil when it would not fit in `sun_path`.
    static func temporaryPath(for path: String) -> String? {
        let candidate = parentDirectory(of: path) + "/.volume-reaper-\(Syscall.processID()).sock"
        return candidate.utf8.count <= maximumPathBytes ? candidate : nil
    }

    // MARK: After binding

    /// Gives the socket bound at `bound` mode 0660 and `group`, then (when
    /// `bound` is a temporary name) renames it over `path`, atomically
    /// replacing a stale socket. Returns the identity of the file now at `path`.
    static func publish(bound: String, at path: String, group: UInt32?) throws(APIServerError) -> Identity {
        do throws(SystemCallError) {
            try Syscall.changeMode(bound, to: mode)
            if let group {
                // The owner stays the process's user (root for the daemon).
                try Syscall.changeGroup(bound, to: group)
            }
            if bound != path {
                try Syscall.rename(bound, to: path)
            }
        } catch {
            if bound != path { try? Syscall.unlink(bound) }
            throw APIServerError(code: .bind, message: "cannot set up the socket \(path): \(error)")
        }
        guard let identity = identity(of: path) else {
            throw APIServerError(code: .bind, message: "\(path): the socket vanished right after binding")
        }
        return identity
    }

    static func identity(of path: String) -> Identity? {
        guard let status = try? Syscall.statx(nil, path) else { return nil }
        return Identity(device: status.device, inode: status.inode)
    }

    /// Removes the socket file at `path` if it is still the one we bound (a
    /// successor may already have replaced it).
    static func removeIfOurs(_ path: String, identity: Identity) -> Bool {
        guard self.identity(of: path) == identity else { return false }
        return (try? Syscall.unlink(path)) != nil
    }

    /// Removes a leftover file at `path` (a failed temporary bind).
    static func removeQuietly(_ path: String) {
        try? Syscall.unlink(path)
    }

    // MARK: Inherited descriptors

    /// Checks that `fd` is a stream socket, as systemd passes for `ListenStream=`.
    static func validateInherited(_ fd: Int32, path: String) throws(APIServerError) {
        let isStream: Bool
        do {
            isStream = try Syscall.isStreamSocket(fd)
        } catch {
            throw APIServerError(
                code: .inheritedDescriptor,
                message: "inherited descriptor \(fd) for \(path) is not a socket: \(error.errno)"
            )
        }
        guard isStream else {
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
