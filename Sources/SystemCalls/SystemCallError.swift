import SystemPackage

/// A failed system call: which call, on which path, and the errno it returned.
///
/// Every wrapper in this module throws this, so a log line or a `--plan` reason
/// can always say what failed and where.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name of the call, e.g. `openat`.
    public var call: String
    /// The errno the kernel returned.
    public var errno: Errno
    /// The path (or name relative to a directory descriptor) it was called on.
    public var path: String?

    public init(call: String, errno: Errno, path: String? = nil) {
        self.call = call
        self.errno = errno
        self.path = path
    }

    public var description: String {
        let target = path.map { " \($0)" } ?? ""
        return "\(call)\(target): \(errno) (errno \(errno.rawValue))"
    }

    /// Errors that say "the answer is unknown" rather than "no": the file
    /// system or the network is in trouble. Deletion must fail closed on them.
    public var isInconclusive: Bool {
        switch errno {
        case .ioError, .staleNFSFileHandle, .socketNotConnected, .permissionDenied,
             .notPermitted, .timedOut, .hostIsDown, .noMemory, .tooManyOpenFiles,
             .resourceTemporarilyUnavailable:
            return true
        default:
            return errno.rawValue == 107 /* ENOTCONN */
        }
    }

    /// The entry is gone: it was deleted or renamed while we looked.
    public var isVanished: Bool { errno == .noSuchFileOrDirectory }
}
