#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLinuxShims
import SystemPackage

/// Child processes, pipes, signals and sleeping.
extension Syscall {
    /// `pipe2(2)` with close-on-exec set atomically (a child another thread
    /// spawns meanwhile cannot inherit an end), non-blocking when asked.
    public static func pipe(nonBlocking: Bool) throws(SystemCallError) -> (read: FileDescriptor, write: FileDescriptor) {
        var fds: (Int32, Int32) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { raw throws(SystemCallError) in
            try retryingEINTR("pipe2") { vr_pipe2(raw.baseAddress!.assumingMemoryBound(to: Int32.self), nonBlocking ? 1 : 0) }
        }
        return (FileDescriptor(rawValue: fds.0), FileDescriptor(rawValue: fds.1))
    }

    /// `socketpair(2)` of connected `AF_UNIX` stream sockets, close-on-exec.
    public static func socketPair() throws(SystemCallError) -> (FileDescriptor, FileDescriptor) {
        var fds: (Int32, Int32) = (-1, -1)
        _ = try withUnsafeMutableBytes(of: &fds) { raw throws(SystemCallError) in
            try retryingEINTR("socketpair") {
                Glibc.socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, raw.baseAddress!.assumingMemoryBound(to: Int32.self))
            }
        }
        return (FileDescriptor(rawValue: fds.0), FileDescriptor(rawValue: fds.1))
    }

    /// `posix_spawn(3)` of `executable` (a path, not searched in `PATH`) with
    /// stdin from `/dev/null`, stdout and stderr on the given descriptors, in
    /// a new process group, with default signal dispositions and an empty
    /// signal mask. Returns the child's pid.
    public static func spawn(
        _ executable: String, arguments: [String], environment: [String],
        stdout: FileDescriptor, stderr: FileDescriptor
    ) throws(SystemCallError) -> Int32 {
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
        var pid = pid_t()
        // posix_spawn returns the error rather than setting errno.
        let code = Glibc.posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard code == 0 else { throw SystemCallError(call: "posix_spawn", errno: Errno(rawValue: code), path: executable) }
        return pid
    }

    /// `waitpid(2)` for the child `pid`: its wait status once it has ended;
    /// nil when `block` is false and it is still running.
    public static func waitForChild(_ pid: Int32, block: Bool) throws(SystemCallError) -> Int32? {
        var status: Int32 = 0
        let reaped = try retryingEINTR("waitpid") { Glibc.waitpid(pid, &status, block ? 0 : WNOHANG) }
        return reaped == pid ? status : nil
    }

    /// `kill(2)` with `SIGKILL`; a negative `pid` names a process group.
    public static func killNow(_ pid: Int32) throws(SystemCallError) {
        _ = try retryingEINTR("kill") { Glibc.kill(pid, SIGKILL) }
    }

    /// `nanosleep(2)` for `milliseconds`, resumed after a signal for what is left.
    /// Blocks the thread: call it only off the cooperative pool.
    public static func sleep(milliseconds: Int) {
        var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while Glibc.nanosleep(&request, &remaining) == -1 && Glibc.errno == EINTR {
            request = remaining
        }
    }

    /// `geteuid(2)`.
    public static func effectiveUserID() -> UInt32 { UInt32(Glibc.geteuid()) }
}
