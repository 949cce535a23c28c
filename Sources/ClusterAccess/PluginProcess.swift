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
        var pid = pid_t()
        let spawned = spawn(&pid, executable, arguments, environment, stdout: stdoutPipe.write, stderr: stderrPipe.write)
        Syscall.close(stdoutPipe.write)
        Syscall.close(stderrPipe.write)
        defer {
            Syscall.close(stdoutPipe.read)
            Syscall.close(stderrPipe.read)
        }
        guard spawned == 0 else { throw .spawn(Errno(rawValue: spawned)) }

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
                let count = buffer.withUnsafeMutableBytes { Glibc.read(entry.fd.rawValue, $0.baseAddress, $0.count) }
                if count < 0 && (errno == EINTR || errno == EAGAIN) { stillOpen.append(entry); continue }
                if count <= 0 { continue }
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
        var status: Int32 = 0
        while !outcome.timedOut && !outcome.stdoutTooLarge {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { return finish(outcome, status: status) }
            if reaped == -1 && errno != EINTR { break }
            if ContinuousClock.now >= deadline { outcome.timedOut = true; break }
            usleep(5_000)
        }
        killGroup(pid)
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return finish(outcome, status: status)
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

    static func killGroup(_ pid: pid_t) {
        _ = kill(-pid, SIGKILL)
        _ = kill(pid, SIGKILL)
    }

    static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
    }

    /// A pipe for the child's output: a socket pair, which (unlike `pipe2`)
    /// Swift's Glibc module offers with close-on-exec set atomically, so a
    /// child another thread spawns meanwhile cannot inherit the write end
    /// and hold our end-of-file back.
    static func makePipe() throws(RunError) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        let result = fds.withUnsafeMutableBufferPointer {
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, $0.baseAddress)
        }
        guard result == 0 else { throw .system(SystemCallError(call: "socketpair", errno: Errno(rawValue: errno))) }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// posix_spawn with the child in a new process group, default signal
    /// dispositions and an empty mask; returns 0 or the errno.
    static func spawn(
        _ pid: inout pid_t, _ executable: String, _ arguments: [String], _ environment: [String],
        stdout: FileDescriptor, stderr: FileDescriptor
    ) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout.rawValue, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr.rawValue, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t(), allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        return posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    }
}
