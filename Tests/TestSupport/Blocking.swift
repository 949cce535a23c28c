#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Runs `body` on a thread of its own and waits at most `seconds` for it, so
/// a call blocked in the kernel (an `open(2)` of a FIFO) fails the test
/// instead of hanging the run. On a timeout `unblock` runs (it should open the
/// FIFO's other end), the thread gets 10 s more to finish, and nil is returned.
public func finishing<T: Sendable>(
    within seconds: TimeInterval, unblock: @escaping @Sendable () -> Void = {}, _ body: @escaping @Sendable () -> T
) -> T? {
    let done = DispatchSemaphore(value: 0)
    let box = ResultBox<T>()
    Thread.detachNewThread {
        box.set(body())
        done.signal()
    }
    if done.wait(timeout: .now() + seconds) == .success { return box.get() }
    unblock()
    _ = done.wait(timeout: .now() + 10)
    return nil
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ value: T) { lock.withLock { self.value = value } }
    func get() -> T? { lock.withLock { value } }
}

/// FIFOs planted for a test, and the descriptors that free whoever blocked on
/// them: opening a FIFO read-write never blocks on Linux and lets a blocked
/// reader's or writer's `open` return.
public final class PlantedFIFOs: @unchecked Sendable {
    public let paths: [String]
    private let lock = NSLock()
    private var openEnds: [Int32] = []

    /// Makes a FIFO at each path (mode 0666).
    public init(_ paths: [String]) throws {
        for path in paths where mkfifo(path, 0o666) != 0 {
            throw SandboxUnavailable("mkfifo \(path): \(String(cString: strerror(errno)))")
        }
        self.paths = paths
    }

    /// Frees anything blocked opening one of them; the ends stay open until `close()`.
    public func release() {
        let fds = paths.map { open($0, O_RDWR | O_NONBLOCK | O_CLOEXEC) }.filter { $0 >= 0 }
        lock.withLock { openEnds += fds }
    }

    public func close() {
        for fd in lock.withLock({ openEnds }) { _ = Glibc.close(fd) }
        lock.withLock { openEnds = [] }
    }

    /// Each path is still a FIFO (nothing replaced or removed it).
    public var intact: Bool {
        paths.allSatisfy { path in
            var status = stat()
            return lstat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFIFO
        }
    }

    deinit { close() }
}
