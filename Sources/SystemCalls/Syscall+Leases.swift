#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxShims
import SystemPackage

/// File leases (`fcntl(F_SETLEASE)`): the one way to learn that no other
/// process holds a file open, and to keep it so while we act on it.
extension Syscall {
    /// What `tryWriteLease` found.
    public enum LeaseOutcome: Sendable, Equatable {
        /// Ours: nobody else has the file open, and an open by anyone else
        /// waits until `releaseLease` (or fails at once with O_NONBLOCK).
        case granted
        /// Another descriptor has the file open (EAGAIN).
        case heldOpenElsewhere
        /// Not granted here: a filesystem without leases or
        /// `fs.leases-enable=0` (EINVAL), or a file of another user without
        /// CAP_LEASE (EACCES).
        case unavailable
    }

    /// Opens a regular file only to lease it: read-only, never through a
    /// symlink, never waiting on someone else's lease, never a controlling
    /// terminal.
    public static func openForLease(_ directory: FileDescriptor, _ name: FileName) throws(SystemCallError) -> FileDescriptor {
        try openAt(directory, name, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
    }

    /// Takes a write lease on `fd`. SIGIO, the lease-break signal, is ignored
    /// from the first call on (its default action would end the process).
    public static func tryWriteLease(_ fd: FileDescriptor, path: @autoclosure () -> String? = nil) throws(SystemCallError) -> LeaseOutcome {
        _ = leaseBreakSignalIgnored
        do throws(SystemCallError) {
            _ = try retryingEINTR("fcntl(F_SETLEASE)", path: path()) { vr_take_write_lease(fd.rawValue) }
            return .granted
        } catch where error.errno == .resourceTemporarilyUnavailable {
            return .heldOpenElsewhere
        } catch where [.invalidArgument, .noLocks, .permissionDenied, .notPermitted].contains(error.errno) {
            return .unavailable
        }
    }

    /// Gives a lease back before the descriptor is closed: a close alone
    /// leaves a waiting opener blocked for `lease-break-time`.
    public static func releaseLease(_ fd: FileDescriptor, path: @autoclosure () -> String? = nil) throws(SystemCallError) {
        _ = try retryingEINTR("fcntl(F_SETLEASE)", path: path()) { vr_release_lease(fd.rawValue) }
    }

    /// CAP_LEASE: leases on files of other users (a pod's files).
    public static let leaseCapability = 28

    private static let leaseBreakSignalIgnored: Void = vr_ignore_lease_break_signal()
}
