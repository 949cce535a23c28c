import Foundation
import SystemCalls

/// Where things are, for tests that run the package's own files.
public enum PackagePaths {
    /// The package root, found from this file's location.
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The built `volume-reaper` binary next to the test bundle (swift build
    /// puts products in one directory), or `$VOLUME_REAPER_BIN`.
    public static var binary: String {
        if let override = ProcessInfo.processInfo.environment["VOLUME_REAPER_BIN"] { return override }
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = argv0.deletingLastPathComponent()
        // The runner may be inside `X.xctest/...` on some layouts.
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("volume-reaper").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug/volume-reaper").path
    }

    public static let exampleNodeScript = root.appendingPathComponent("examples/make-example-node").path
}

/// Whether the tests run as root (CI does): mounts, chattr and flock tests need it.
public let isRoot = getuid() == 0

/// A fresh directory under the system temp dir, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "test") throws {
        let template = (NSTemporaryDirectory() as NSString).appendingPathComponent("volume-reaper-\(label)-XXXXXX")
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        path = String(cString: made)
    }

    public func appending(_ component: String) -> String { path + "/" + component }

    /// Unmounts whatever a test mounted below, then deletes the tree.
    public func remove() {
        _ = try? ChildProcess.run(PackagePaths.exampleNodeScript, ["--cleanup", path])
    }
}

/// The outcome of a finished child process.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs real child processes (the agent, shell tools) to completion.
public enum ChildProcess {
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, input: String? = nil
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        // Files, not pipes: a background grandchild (a lock holder the example
        // node starts) may inherit them, and must not keep us waiting for EOF.
        let scratch = try TemporaryDirectory("child")
        defer { try? FileManager.default.removeItem(atPath: scratch.path) }
        let outPath = scratch.appending("stdout"), errPath = scratch.appending("stderr"), inPath = scratch.appending("stdin")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        _ = FileManager.default.createFile(atPath: inPath, contents: Data((input ?? "").utf8))
        let outHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let inHandle = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
        defer { try? outHandle.close(); try? errHandle.close(); try? inHandle.close() }
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = inHandle
        try process.run()
        process.waitUntilExit()
        let outData = (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data()
        let errData = (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data()
        return ProcessResult(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self)
        )
    }

    /// Runs a shell command line (for setup steps such as mount or chattr).
    @discardableResult
    public static func shell(_ command: String) throws -> ProcessResult {
        try run("/bin/bash", ["-c", command])
    }
}

/// The realistic example node of `examples/make-example-node`, with the verdicts
/// design §4/§5 give its volumes.
public struct ExampleNode: Sendable {
    public struct Expectation: Sendable, Hashable {
        public var path: String
        public var verdict: String
        public var reasons: Set<String>
    }

    public let directory: TemporaryDirectory
    public var kubeletRoot: String { directory.appending("kubelet") }
    public var manifests: String { directory.appending("manifests") }
    public var outside: String { directory.appending("outside") }
    /// An empty kubelet pod cgroup tree (`--cgroup-root`): nothing runs.
    public var cgroupRoot: String { directory.appending("cgroup") }
    public let expectations: [Expectation]

    /// Builds the node; `holdLockSeconds` keeps one volume's directory flock-held.
    public init(holdLockSeconds: Int? = nil) throws {
        let directory = try TemporaryDirectory("node")
        self.directory = directory
        var environment: [String: String] = [:]
        if let holdLockSeconds { environment["HOLD_LOCK_SECONDS"] = String(holdLockSeconds) }
        let result = try ChildProcess.run(PackagePaths.exampleNodeScript, [directory.path], environment: environment)
        guard result.status == 0 else {
            directory.remove()
            throw ExampleNodeError(message: "make-example-node failed: \(result.stderr)")
        }
        let table = try String(contentsOfFile: directory.appending("expected.tsv"), encoding: .utf8)
        expectations = table.split(separator: "\n").map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Expectation(
                path: directory.path + "/" + fields[0], verdict: fields[1],
                reasons: Set(fields[2].split(separator: ",").map(String.init))
            )
        }
    }

    public func remove() { directory.remove() }
}

public struct ExampleNodeError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// A datagram socket standing in for systemd's `NOTIFY_SOCKET`: the daemon
/// under test sends `READY=1`, `STATUS=...` here.
public final class NotifySocket: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        guard let address = UnixSocketAddress(path) else { throw POSIXError(.ENAMETOOLONG) }
        let bound = address.withSockaddr { bind(fd, $0, $1) }
        guard bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    deinit { close(fd) }

    /// The next datagram, or nil after `timeout` seconds.
    public func receive(timeout: TimeInterval) -> String? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    /// Messages until one contains `needle` (returned with all before it), or nil on timeout.
    public func waitFor(_ needle: String, timeout: TimeInterval) -> [String]? {
        let deadline = Date().addingTimeInterval(timeout)
        var seen: [String] = []
        while Date() < deadline {
            guard let message = receive(timeout: deadline.timeIntervalSinceNow) else { break }
            seen.append(message)
            if message.contains(needle) { return seen }
        }
        return nil
    }
}

/// A long-running child process (the daemon under test), stopped by signal.
public final class BackgroundProcess: @unchecked Sendable {
    public let process = Process()
    private let logURL: URL

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], log: String) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        logURL = URL(fileURLWithPath: log)
        let handle = try FileHandle(forWritingTo: logURL)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// Sends `signal` and waits up to `timeout` seconds; returns the exit status (nil: still running).
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeout: TimeInterval = 20) -> Int32? {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { return nil }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes.
public func eventually(timeout: TimeInterval = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    repeat {
        if try condition() { return true }
        usleep(100_000)
    } while Date() < deadline
    return false
}

/// `eventually` for async tests: polls every `interval` with `Task.sleep`, so
/// a waiting test does not hold one of the few cooperative threads that the
/// test servers' and the other tests' tasks need.
public func waitUntil(
    timeout: TimeInterval = 30, every interval: Duration = .milliseconds(100), _ condition: () throws -> Bool
) async -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if (try? condition()) == true { return true }
        try? await Task.sleep(for: interval)
    }
    return (try? condition()) == true
}

/// `curl --unix-socket` against the daemon under test: status code and body.
public func curl(_ socket: String, _ path: String, method: String = "GET", asUser: UInt32? = nil) throws -> (status: Int, body: String) {
    var arguments = ["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "30", "--unix-socket", socket, "-X", method, "http://localhost" + path]
    var executable = "/usr/bin/curl"
    if let asUser {
        arguments = ["--reuid=\(asUser)", "--regid=\(asUser)", "--clear-groups", "/usr/bin/curl"] + arguments
        executable = "/usr/bin/setpriv"
    }
    let result = try ChildProcess.run(executable, arguments)
    var lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    let status = Int(lines.popLast() ?? "") ?? 0
    return (status, lines.joined(separator: "\n"))
}
