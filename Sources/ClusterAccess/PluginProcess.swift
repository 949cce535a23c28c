import Foundation
import SystemCalls
import SystemPackage

/// Runs a credential plugin as a child process in its own process group,
/// stdin from /dev/null, with a deadline (the whole group is killed when it
/// passes) and a cap on what it may print.
enum PluginProcess {
    struct Outcome: Sendable {
        /// The exit status, or nil when it was killed by a signal (see `signal`).
        var exitStatus: Int32?
        var signal: Int32?
        var stdout: [UInt8]
        /// The start of stderr, for the error line.
        var stderr: [UInt8]
        var timedOut = false
        var stdoutTooLarge = false
    }

    enum RunError: Error, Sendable {
        /// posix_spawn failed: the errno (ENOENT: not found; EACCES: not executable).
        case spawn(Errno)
        case system(SystemCallError)
    }

    static let stderrLimit = 4 << 10

    static func run(
        executable: String, arguments: [String], environment: [String],
        timeout: Duration, stdoutLimit: Int
    ) throws(RunError) -> Outcome {
        let deadline = ContinuousClock.now + timeout
        let stdoutPipe = try makePipe(), stderrPipe = try makePipe()
        let spawned = Result { () throws(SystemCallError) -> Int32 in
            try Syscall.spawn(executable, arguments: arguments, environment: environment, stdout: stdoutPipe.write, stderr: stderrPipe.write)
        }
        Syscall.close(stdoutPipe.write)
        Syscall.close(stderrPipe.write)
        defer {
            Syscall.close(stdoutPipe.read)
            Syscall.close(stderrPipe.read)
        }
        let pid: Int32
        switch spawned {
        case .success(let child): pid = child
        case .failure(let error): throw .spawn(error.errno)
        }

        var outcome = Outcome(stdout: [], stderr: [])
        var open: [(fd: FileDescriptor, isStdout: Bool)] = [(stdoutPipe.read, true), (stderrPipe.read, false)]
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        // Read both pipes to their end (or the deadline, or the cap).
        while !open.isEmpty {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { outcome.timedOut = true; break }
            var polled = open.map { pollfd(fd: $0.fd.rawValue, events: Int16(POLLIN), revents: 0) }
            let ready: Int
            do { ready = try Syscall.poll(&polled, timeoutMilliseconds: milliseconds(remaining)) } catch { killGroup(pid); throw .system(error) }
            if ready == 0 { continue }
            var stillOpen: [(fd: FileDescriptor, isStdout: Bool)] = []
            for (index, entry) in open.enumerated() {
                guard polled[index].revents != 0 else { stillOpen.append(entry); continue }
                let read = buffer.withUnsafeMutableBytes { buffer in
                    Result { () throws(SystemCallError) -> Int in try Syscall.read(entry.fd, into: buffer) }
                }
                let count: Int
                switch read {
                case .success(let bytes): count = bytes
                case .failure(let error) where error.errno == .resourceTemporarilyUnavailable: stillOpen.append(entry); continue
                case .failure: continue
                }
                if count == 0 { continue }
                if entry.isStdout {
                    outcome.stdout.append(contentsOf: buffer[..<count])
                } else if outcome.stderr.count < stderrLimit {
                    outcome.stderr.append(contentsOf: buffer[..<min(count, stderrLimit - outcome.stderr.count)])
                }
                stillOpen.append(entry)
            }
            open = stillOpen
            if outcome.stdout.count > stdoutLimit { outcome.stdoutTooLarge = true; break }
        }
        // Both pipes closed: wait for the exit, still within the deadline.
        while !outcome.timedOut && !outcome.stdoutTooLarge {
            let reaped: Int32?
            do { reaped = try Syscall.waitForChild(pid, block: false) } catch { break }
            if let status = reaped { return finish(outcome, status: status) }
            if ContinuousClock.now >= deadline { outcome.timedOut = true; break }
            Syscall.sleep(milliseconds: 5)
        }
        killGroup(pid)
        let status = (try? Syscall.waitForChild(pid, block: true)) ?? nil
        return finish(outcome, status: status ?? 0)
    }

    static func finish(_ outcome: Outcome, status: Int32) -> Outcome {
        var outcome = outcome
        // The wait status, decoded as <sys/wait.h>'s macros do.
        if status & 0x7F == 0 {
            outcome.exitStatus = (status >> 8) & 0xFF
        } else {
            outcome.signal = status & 0x7F
        }
        return outcome
    }

    static func killGroup(_ pid: Int32) {
        try? Syscall.killNow(-pid)
        try? Syscall.killNow(pid)
    }

    static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
    }

    /// A pipe for the child's output: a socket pair, close-on-exec, so a
    /// child another thread spawns meanwhile cannot inherit the write end
    /// and hold our end-of-file back.
    static func makePipe() throws(RunError) -> (read: FileDescriptor, write: FileDescriptor) {
        do {
            let (read, write) = try Syscall.socketPair()
            return (read, write)
        } catch {
            throw .system(error)
        }
    }
}
