import SystemCalls
import SystemPackage


/// Only one process reaps at a time (design §5.7): an exclusive flock on
/// `<state-dir>/reaper.lock`, held until `release()` or process exit.
public final class ReaperLock: Sendable {
    public let path: String
    private let fd: FileDescriptor

    private init(path: String, fd: FileDescriptor) {
        self.path = path
        self.fd = fd
    }

    /// Takes the lock, creating the state directory (0700) if needed.
    /// Throws `ReaperLockError.held` when another reaper has it.
    public static func acquire(stateDirectory: String) throws(ReaperLockError) -> ReaperLock {
        let path = stateDirectory + "/reaper.lock"
        do throws(SystemCallError) {
            try Syscall.makeDirectory(stateDirectory, mode: 0o700)
        } catch where error.errno == .fileExists {
        } catch {
            throw ReaperLockError(path: stateDirectory, message: "cannot create the state directory: \(error.errno)", isHeld: false)
        }
        let fd: FileDescriptor
        do {
            fd = try Syscall.openAt(nil, path, flags: OpenFlags.readWrite | OpenFlags.create | OpenFlags.noFollow, mode: 0o600)
        } catch {
            throw ReaperLockError(path: path, message: "cannot open: \(error)", isHeld: false)
        }
        do {
            guard try Syscall.tryLockExclusive(fd, path: path) else {
                Syscall.close(fd)
                throw ReaperLockError(path: path, message: "another volume-reaper holds the reaper lock", isHeld: true)
            }
        } catch let error as ReaperLockError {
            throw error
        } catch {
            Syscall.close(fd)
            throw ReaperLockError(path: path, message: "cannot lock: \(error)", isHeld: false)
        }
        return ReaperLock(path: path, fd: fd)
    }

    /// Releases the lock. Unlocked before the close: a child forked meanwhile
    /// (before its exec closes the descriptor) shares the lock, and a close
    /// alone would leave it held by that child until its exec.
    public func release() {
        try? Syscall.unlock(fd, path: path)
        Syscall.close(fd)
    }
}

public struct ReaperLockError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    /// Another process holds it (as opposed to an I/O problem).
    public var isHeld: Bool
    public var description: String { "\(path): \(message)" }
}
