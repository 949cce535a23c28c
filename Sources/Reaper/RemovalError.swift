import ReaperCore
import SystemCalls

/// Why a removal stopped. Every case keeps what was not yet removed; none is
/// retried by force.
public struct RemovalError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A mount point at or inside the tree (never delete through a mount).
        case mounted
        /// A directory is flock-held (systemd-tmpfiles convention).
        case lockHeld
        /// The tree changed under us (an entry swapped, a new entry appeared).
        case changedDuringRemoval
        /// Something could not be read or removed: EIO, ESTALE, ENOTCONN, EACCES, EPERM...
        case inconclusive
        /// A non-recursive plugin's directory is not empty.
        case notEmpty
        /// The path is not `<root>/pods/<uid>/volumes/<plugin>/<volume>` (or an orphan pod dir).
        case outsideKubeletPods
    }

    public var code: Code
    public var path: String
    public var detail: String
    /// The failed call, when a syscall said no.
    public var systemCall: SystemCallError?
    /// What was already removed when it stopped (a partial reap when not zero).
    public var removed = RemovalStats()

    public init(_ code: Code, path: String, detail: String, systemCall: SystemCallError? = nil) {
        self.code = code
        self.path = path
        self.detail = detail
        self.systemCall = systemCall
    }

    public var description: String { "\(path): \(detail)" }

    /// The reason code a kept volume carries for this error.
    public var reason: Reason {
        switch code {
        case .mounted: return .mounted
        case .lockHeld: return .lockHeld
        case .changedDuringRemoval: return .accessedDuringReap
        case .inconclusive, .outsideKubeletPods: return .inconclusive
        case .notEmpty: return .notEmpty
        }
    }

    static func from(_ error: SystemCallError, path: String) -> RemovalError {
        switch error.errno {
        case .resourceBusy:
            return RemovalError(.mounted, path: path, detail: "busy (a mount point?): \(error)", systemCall: error)
        case .directoryNotEmpty:
            return RemovalError(.notEmpty, path: path, detail: "not empty: \(error)", systemCall: error)
        case .noSuchFileOrDirectory, .tooManySymbolicLinkLevels, .notDirectory:
            return RemovalError(.changedDuringRemoval, path: path, detail: "changed while being removed: \(error)", systemCall: error)
        default:
            return RemovalError(.inconclusive, path: path, detail: "\(error)", systemCall: error)
        }
    }
}

/// What a removal freed.
public struct RemovalStats: Sendable, Hashable {
    public var filesRemoved: Int = 0
    public var bytesFreed: UInt64 = 0
    public init() {}

    /// Adds what another part of the removal (another thread) removed.
    public mutating func add(_ other: RemovalStats) {
        filesRemoved += other.filesRemoved
        bytesFreed += other.bytesFreed
    }
}
