import Foundation
import Logging
import NodeDiscovery
import ReaperCore
import SystemCalls
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A kubelet root in a fresh temporary directory, with an `outside/` tree next
/// to it for symlink and bind-mount targets. `remove()` unmounts and deletes.
struct KubeletTree {
    static let uid1 = "5e1f0000-0000-4000-8000-000000000001"
    static let uid2 = "5e1f0000-0000-4000-8000-000000000002"
    static let configHash = "3f2a9c0d4b5e6f708192a3b4c5d6e7f8"
    static let emptyDir = "kubernetes.io~empty-dir"
    /// Three hours ago, whole seconds: "old" for every tree.
    static let old = Int(Date().timeIntervalSince1970) - 3 * 3600

    let directory: TemporaryDirectory
    var root: String { directory.appending("kubelet") }
    var pods: String { root + "/pods" }
    var outside: String { directory.appending("outside") }

    init(_ label: String) throws {
        directory = try TemporaryDirectory(label)
        try makeDirectory(pods)
        try makeDirectory(outside)
    }

    /// Unmounts what the test mounted (deepest first, by the unescaped table: the
    /// cleanup script cannot unmount a path with a space), then deletes the tree.
    func remove() {
        if let table = try? MountTable.read() {
            for mountPoint in table.mounts(atOrUnder: directory.path).map(\.mountPoint).sorted(by: >) {
                _ = umount2(mountPoint, 0)
            }
        }
        directory.remove()
    }

    /// `<root>/pods/<uid>/volumes/<plugin>/<name>`, created.
    @discardableResult
    func volume(_ uid: String = uid1, _ plugin: String = emptyDir, _ name: String = "scratch") throws -> String {
        let path = "\(pods)/\(uid)/volumes/\(plugin)/\(name)"
        try makeDirectory(path)
        return path
    }

    func makeDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ path: String, bytes: Int = 0, text: String? = nil) throws {
        let data = text.map { Data($0.utf8) } ?? Data(repeating: 0xA5, count: bytes)
        guard FileManager.default.createFile(atPath: path, contents: data) else { throw ShellError(message: "cannot create \(path)") }
    }

    func symlink(_ path: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
    }

    /// Runs a shell command; a non-zero exit throws with its stderr.
    @discardableResult
    func sh(_ command: String) throws -> String {
        try KubeletTree.sh(command)
    }

    @discardableResult
    static func sh(_ command: String) throws -> String {
        let result = try ChildProcess.shell(command)
        guard result.status == 0 else { throw ShellError(message: "`\(command)` failed (\(result.status)): \(result.stderr)") }
        return result.stdout
    }

    /// Sets mtime and atime of `path` and everything below it (symlinks themselves) to `seconds`.
    func touchTree(_ path: String, at seconds: Int = old) throws {
        try sh("find '\(path)' -exec touch -h -d @\(seconds) {} +")
    }

    func discover(mountInfo: String = "/proc/self/mountinfo") throws -> NodeInventory {
        try NodeDiscoverer(kubeletRoot: root, mountInfoPath: mountInfo).discover(logger: quietLogger)
    }

    /// The scan of the volume at `path`, by a whole discovery.
    func scan(_ path: String, mountInfo: String = "/proc/self/mountinfo", sourceLocation: SourceLocation = #_sourceLocation) throws -> VolumeScan {
        let volumes = try discover(mountInfo: mountInfo).pods.flatMap(\.volumes)
        return try #require(volumes.first { $0.path == path }, "not discovered: \(path)", sourceLocation: sourceLocation).scan
    }

    /// An empty mountinfo file: what discovery finds must then come from statx alone.
    func emptyMountInfo() throws -> String {
        let path = directory.appending("empty-mountinfo")
        try write(path)
        return path
    }

    /// What find(1), which follows no symlink, says about a tree: entries below
    /// the root, bytes on disk (the root included), newest mtime. `-xdev` stays on
    /// the root's mount.
    func findOracle(_ path: String, xdev: Bool = false) throws -> (files: Int, bytes: UInt64, newestModification: Double) {
        let output = try sh("find '\(path)' \(xdev ? "-xdev" : "") -printf '%d %b %T@\\n'")
        var files = 0, blocks: UInt64 = 0, newest = 0.0
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields[0] != "0" { files += 1 }
            blocks += UInt64(fields[1])!
            newest = max(newest, Double(fields[2])!)
        }
        return (files, blocks * 512, newest)
    }

    /// Mounts (root only); `remove()` unmounts.
    func mount(_ arguments: String) throws {
        try sh("mount \(arguments)")
    }
}

struct ShellError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

let quietLogger = Logger(label: "NodeDiscoveryTests") { _ in SwiftLogNoOpLogHandler() }

func seconds(_ date: Date?) -> Double? { date?.timeIntervalSince1970 }

/// The kernel's status of `path`, not following a final symlink.
func status(_ path: String) throws -> FileStatus { try Syscall.statx(nil, path) }

/// Runs `body` with this thread's file-system uid set to `nobody`, so that the
/// kernel checks permissions for it: root's DAC override is dropped for this
/// thread only (fsuid is per thread), which makes `chmod 000` real for root.
/// `body` must not suspend.
func withFileSystemUIDNobody<T>(_ body: () throws -> T) throws -> T {
    guard isRoot else { return try body() }
    typealias SetFSUID = @convention(c) (UInt32) -> Int32
    let symbol = try #require(dlsym(nil, "setfsuid"), "setfsuid not found in libc")
    let setfsuid = unsafeBitCast(symbol, to: SetFSUID.self)
    let previous = setfsuid(65534)
    defer { _ = setfsuid(UInt32(previous)) }
    // setfsuid reports the previous value; an invalid uid changes nothing and shows the current one.
    try #require(setfsuid(UInt32.max) == 65534, "setfsuid(nobody) did not take")
    return try body()
}
