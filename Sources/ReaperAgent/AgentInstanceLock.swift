import Foundation
import SystemCalls
import SystemPackage

/// One agent per state directory (issue 19): `run` holds an exclusive flock
/// on `<stateDir>/agent.lock` for its whole life, with its pid written in it.
/// A second `run` on the same directory (through another socket, say) would
/// otherwise open the same access store and begin a session of its own,
/// restarting the first daemon's idle clocks. The reaper lock does not cover
/// this: it is held per cycle, and `--once` takes it too.
final class AgentInstanceLock: Sendable {
    static let fileName = "agent.lock"

    let path: String
    private let fd: FileDescriptor

    private init(path: String, fd: FileDescriptor) {
        self.path = path
        self.fd = fd
    }

    /// Takes the lock (creating the state directory, 0700, as the store
    /// would), or throws one line naming the directory and the holder's pid.
    static func acquire(stateDirectory: String) throws(AgentInstanceLockError) -> AgentInstanceLock {
        let path = stateDirectory + "/" + fileName
        do {
            try Syscall.makeDirectory(stateDirectory, mode: 0o700)
        } catch where error.errno != .fileExists {
            throw AgentInstanceLockError("state directory \(stateDirectory): cannot create: \(error.errno)")
        } catch {}
        let fd: FileDescriptor
        do {
            // Never through a symlink: the file is written to.
            fd = try Syscall.openAt(
                nil, path, flags: OpenFlags.readWrite | OpenFlags.create | OpenFlags.noFollow | OpenFlags.nonBlocking, mode: 0o644
            )
        } catch {
            throw AgentInstanceLockError("state directory \(stateDirectory): cannot open \(fileName): \(error)")
        }
        let locked: Bool
        do {
            locked = try Syscall.tryLockExclusive(fd, path: path)
        } catch {
            Syscall.close(fd)
            throw AgentInstanceLockError("state directory \(stateDirectory): cannot lock \(fileName): \(error)")
        }
        guard locked else {
            Syscall.close(fd)
            let holder = holderPID(path).map { "pid \($0)" } ?? "pid unknown"
            throw AgentInstanceLockError(
                "state directory \(stateDirectory) is in use by another volume-reaper run (\(holder), lock \(path)); one agent per state directory"
            )
        }
        do {
            // The pid for the refusal above and for people (`cat agent.lock`);
            // the flock, not the text, is what excludes.
            try Syscall.truncate(fd, to: 0, path: path)
            try Syscall.writeAll(fd, Array("\(Syscall.processID())\n".utf8), at: 0, path: path)
        } catch {
            try? Syscall.unlock(fd, path: path)
            Syscall.close(fd)
            throw AgentInstanceLockError("state directory \(stateDirectory): cannot write \(fileName): \(error)")
        }
        return AgentInstanceLock(path: path, fd: fd)
    }

    /// The pid the holder wrote; nil when unreadable or not yet written
    /// (between its flock and its write).
    static func holderPID(_ path: String) -> Int32? {
        guard let bytes = try? RegularFileReader.read(path, limit: 64, followSymlinks: false) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Int32(text).flatMap { $0 > 0 ? $0 : nil }
    }

    /// Unlocks and closes; the file stays (removing it would race a starting agent).
    func release() {
        try? Syscall.unlock(fd, path: path)
        Syscall.close(fd)
    }
}

/// A second agent on the same state directory, or a lock file that cannot be used.
struct AgentInstanceLockError: Error, Sendable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
