import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
@testable import VolumeWatcher

/// Log lines a test can count.
final class LogRecorder: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
    }

    let entries = Mutex<[Entry]>([])

    var logger: Logger {
        var logger = Logger(label: "volume-watcher-test") { _ in RecordingLogHandler(recorder: self) }
        logger.logLevel = .debug
        return logger
    }

    func count(level: Logger.Level, containing text: String) -> Int {
        entries.withLock { $0.filter { $0.level == level && $0.message.contains(text) }.count }
    }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        recorder.entries.withLock { $0.append(.init(level: event.level, message: "\(event.message)")) }
    }
}

/// A kubelet root in a temp directory, built with plain file operations.
struct PodTree {
    static let emptyDir = "kubernetes.io~empty-dir"

    let directory: TemporaryDirectory
    var root: String { directory.appending("kubelet") }
    var pods: String { root + "/pods" }
    var manifests: String { directory.appending("manifests") }

    init(_ label: String) throws {
        directory = try TemporaryDirectory(label)
        try FileManager.default.createDirectory(atPath: pods, withIntermediateDirectories: true)
    }

    func volume(_ uid: String, _ name: String, plugin: String = emptyDir) -> String {
        "\(pods)/\(uid)/volumes/\(plugin)/\(name)"
    }

    /// Creates a volume with `directories` (relative) and one file `data` in each.
    @discardableResult
    func makeVolume(_ uid: String, _ name: String, plugin: String = emptyDir, directories: [String] = []) throws -> String {
        let path = volume(uid, name, plugin: plugin)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data("data\n".utf8).write(to: URL(fileURLWithPath: path + "/data"))
        for directory in directories {
            try FileManager.default.createDirectory(atPath: path + "/" + directory, withIntermediateDirectories: true)
            try Data("data\n".utf8).write(to: URL(fileURLWithPath: path + "/" + directory + "/data"))
        }
        return path
    }

    func remove() { directory.remove() }
}

let podA = "0f8e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
let podB = "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
let staticPod = "0123456789abcdef0123456789abcdef"

func makeWatcher(
    _ tree: PodTree, manifests: String? = nil, options: WatcherOptions = WatcherOptions(pollInterval: .milliseconds(200)),
    logger: Logger = LogRecorder().logger
) -> VolumeWatcher {
    VolumeWatcher(kubeletRoot: tree.root, manifestsPath: manifests, options: options, logger: logger)
}

/// Runs the watcher in a child task, waits until it is ready, runs `body`,
/// then cancels it and waits for `run()` to return.
func withRunningWatcher<T: Sendable>(
    _ watcher: VolumeWatcher, _ body: (VolumeWatcher) async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await watcher.run() }
        await watcher.waitUntilReady()
        do {
            let result = try await body(watcher)
            group.cancelAll()
            try await group.waitForAll()
            return result
        } catch {
            group.cancelAll()
            try? await group.waitForAll()
            throw error
        }
    }
}

/// Polls `condition` every 20 ms for up to `timeout`; true once it holds.
func eventually(timeout: Duration = .seconds(5), _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try condition()
}

/// Collects drains across polls.
struct DrainLog {
    var accesses: [String: Date] = [:]
    var removed: Set<String> = []

    mutating func take(_ watcher: VolumeWatcher) {
        let drain = watcher.drainAccesses()
        accesses.merge(drain.accesses) { max($0, $1) }
        removed.formUnion(drain.removed)
    }

    /// Waits until `volume` shows an access.
    mutating func waitForAccess(_ volume: String, on watcher: VolumeWatcher) async -> Bool {
        await eventually {
            take(watcher)
            return accesses[volume] != nil
        }
    }
}

/// Writes to a sentinel file and waits until the watcher reports it: inotify
/// keeps one queue in order, so every earlier event has been handled by then.
/// Clears the drain afterwards.
func barrier(_ watcher: VolumeWatcher, sentinelVolume: String) async throws -> Bool {
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: sentinelVolume + "/data"))
    try handle.seekToEnd()
    try handle.write(contentsOf: Data("x".utf8))
    try handle.close()
    var log = DrainLog()
    let seen = await log.waitForAccess(sentinelVolume, on: watcher)
    _ = watcher.drainAccesses()
    return seen
}

func modificationTime(_ path: String) throws -> Date {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return attributes[.modificationDate] as? Date ?? .distantPast
}

@discardableResult
func shell(_ command: String) throws -> ProcessResult {
    let result = try ChildProcess.shell(command)
    #expect(result.status == 0, "\(command): \(result.stderr)")
    return result
}

final class Counter: Sendable {
    let value = Mutex(0)
    func increment() { value.withLock { $0 += 1 } }
    var current: Int { value.withLock { $0 } }
}
