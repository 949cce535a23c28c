import Foundation

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
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let inputPipe = Pipe()
        process.standardInput = inputPipe
        try process.run()
        if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try? inputPipe.fileHandleForWriting.close()
        // Read both pipes fully before waiting, so a chatty child cannot block.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
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
    public var description: String { message }
}
