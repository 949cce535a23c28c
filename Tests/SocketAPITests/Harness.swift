#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemCalls
import Logging
import Prometheus
import ReaperCore
import ServiceLifecycle
import SocketAPI
import TestSupport
import Testing

/// The agent side of the API for these tests: a fixed plan, settable health,
/// counted reconciles. The server is what is under test.
actor FakeProvider: AgentAPIProvider {
    var plan: Plan?
    var healthValue: AgentHealth
    var reconcileError: (any Error & Sendable)?
    var reconcileDelay: Duration = .zero
    private(set) var reconciles = 0

    init(plan: Plan? = Fixture.plan, healthy: Bool = true) {
        self.plan = plan
        self.healthValue = AgentHealth(
            healthy: healthy, state: healthy ? "running" : "degraded", watches: 12, volumes: plan?.volumes.count ?? 0,
            lastReconcile: Fixture.generatedAt, lastReconcileError: healthy ? nil : "manifests unreadable", dryRun: true
        )
    }

    func currentPlan() async -> Plan? { plan }
    func health() async -> AgentHealth { healthValue }

    func reconcileNow() async throws -> Plan {
        reconciles += 1
        if reconcileDelay > .zero { try await Task.sleep(for: reconcileDelay) }
        if let reconcileError { throw reconcileError }
        var next = plan ?? Fixture.plan
        next.generatedAt = Fixture.generatedAt.addingTimeInterval(60)
        plan = next
        return next
    }

    func setReconcileError(_ error: (any Error & Sendable)?) { reconcileError = error }
    func setReconcileDelay(_ delay: Duration) { reconcileDelay = delay }
}

struct ReconcileFailed: Error, CustomStringConvertible {
    var description: String { "the kubelet tree vanished" }
}

enum Fixture {
    static let generatedAt = Date(timeIntervalSince1970: 1_795_000_000)
    static let podA = "5e1f0000-0000-4000-8000-000000000001"
    static let podB = "5e1f0000-0000-4000-8000-000000000002"

    static func volume(_ pod: String, _ name: String, _ verdict: VerdictKind, orphan: Bool = false) -> VolumeVerdict {
        VolumeVerdict(
            path: "/var/lib/kubelet/pods/\(pod)/volumes/kubernetes.io~empty-dir/\(name)", podUID: pod,
            namespace: orphan ? nil : "batch", pod: orphan ? nil : "report-job-1", podPhase: orphan ? nil : "Succeeded",
            orphan: orphan, plugin: .emptyDir, name: name, verdict: verdict,
            reasons: verdict == .reap ? [.podTerminated, .idle] : [.recentAccess],
            lastAccess: generatedAt.addingTimeInterval(-7200), lastAccessSource: .mtime,
            idleSeconds: verdict == .reap ? 7200 : 60, bytes: 8192, files: 3, mounted: false, mounts: []
        )
    }

    static let plan = Plan(
        generatedAt: generatedAt, kubeletRoot: "/var/lib/kubelet",
        manifests: ManifestSummary(
            path: "/var/lib/volume-reaper/manifests", refreshedAt: generatedAt, complete: true, errors: [], files: 1, pods: 1
        ),
        alerts: [],
        volumes: [volume(podA, "scratch", .reap), volume(podA, "cache", .keep), volume(podB, "data", .keep, orphan: true)],
        orphanPodDirectories: []
    )
}

let quietLogger = Logger(label: "socket-api-tests") { _ in SwiftLogNoOpLogHandler() }

/// A temporary directory (mode 0755, so a dropped-privilege child can reach
/// the socket) with the socket at `run/api.sock` (a subdirectory the server creates).
struct SocketDirectory: Sendable {
    let root: String
    var socketPath: String { root + "/run/api.sock" }

    init() throws {
        root = try TemporaryDirectory("api").path
        chmod(root, 0o755)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

/// Runs a server on `directory` for `body`, then cancels it and waits for `run()` to end.
func withServer(
    provider: FakeProvider = FakeProvider(),
    registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
    configure: (inout APIServerConfiguration) -> Void = { _ in },
    _ body: (APIServer, String) async throws -> Void
) async throws {
    let directory = try SocketDirectory()
    defer { directory.remove() }
    var configuration = APIServerConfiguration(socketPath: directory.socketPath)
    configure(&configuration)
    let server = try APIServer(configuration: configuration, provider: provider, registry: registry, logger: quietLogger)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        await server.waitUntilListening()
        do {
            try await body(server, configuration.socketPath)
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
        try await group.waitForAll()
    }
}

// MARK: Blocking work off the cooperative pool

/// Runs blocking `work` (a child process, a blocking socket) on its own
/// thread, so the server's tasks keep the cooperative pool to themselves.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.start()
    }
}

// MARK: curl

struct HTTPResult: Sendable {
    var status: Int
    var headers: [String: String]
    var body: Data
    var text: String { String(decoding: body, as: UTF8.self) }

    func json<T: Decodable>(_ type: T.Type) throws -> T {
        try Plan.decoder().decode(type, from: body)
    }

    var errorCode: String? { (try? json(APIErrorBody.self))?.error.code }
    var errorMessage: String? { (try? json(APIErrorBody.self))?.error.message }
}

struct CurlFailed: Error, CustomStringConvertible {
    var description: String
}

/// `curl --unix-socket PATH http://localhost/TARGET` as a child process;
/// `user` runs it as that uid/gid through `setpriv`.
func curl(
    _ socket: String, _ target: String, method: String = "GET", data: String? = nil, user: UInt32? = nil
) async throws -> HTTPResult {
    var arguments = ["-sS", "-i", "--max-time", "20", "--unix-socket", socket, "-X", method]
    if let data { arguments += ["--data-binary", data, "-H", "Content-Type: application/json"] }
    arguments.append("http://localhost" + target)
    var executable = "/usr/bin/curl"
    if let user {
        arguments = ["--reuid=\(user)", "--regid=\(user)", "--clear-groups", executable] + arguments
        executable = "/usr/bin/setpriv"
    }
    let launch = executable
    let args = arguments
    let result = try await onThread { try ChildProcess.run(launch, args) }
    guard result.status == 0 else {
        throw CurlFailed(description: "curl \(args.joined(separator: " ")) exited \(result.status): \(result.stderr)")
    }
    return try parseResponse(Data(result.stdout.utf8))
}

final class Synchronized<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
}

/// Splits `HTTP/1.1 200 OK\r\nName: value\r\n\r\nbody` (skipping `100 Continue` heads).
func parseResponse(_ data: Data) throws -> HTTPResult {
    var rest = data
    let separator = Data("\r\n\r\n".utf8)
    while true {
        guard let end = rest.range(of: separator) else {
            throw CurlFailed(description: "no header end in: \(String(decoding: data, as: UTF8.self))")
        }
        let headText = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self)
        let lines = headText.components(separatedBy: "\r\n")
        let statusFields = lines[0].split(separator: " ")
        guard statusFields.count >= 2, let status = Int(statusFields[1]) else {
            throw CurlFailed(description: "bad status line: \(lines[0])")
        }
        rest = Data(rest[end.upperBound...])
        if status == 100 { continue }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return HTTPResult(status: status, headers: headers, body: rest)
    }
}

// MARK: Raw sockets

struct SocketFailure: Error, CustomStringConvertible {
    var description: String
}

/// A blocking Unix stream client for bytes curl would not send. Use it on one
/// thread (inside `onThread`).
final class RawClient: @unchecked Sendable {
    let fd: Int32

    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketFailure(description: "socket: \(errno)") }
        guard let address = UnixSocketAddress(path) else { throw SocketFailure(description: "\(path): too long for sun_path") }
        let result = address.withSockaddr { connect(fd, $0, $1) }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw SocketFailure(description: "connect \(path): \(String(cString: strerror(code)))")
        }
    }

    deinit { close(fd) }

    /// Writes all of `text`; false when the server has closed (EPIPE/ECONNRESET).
    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    /// Reads up to `count` bytes, waiting at most `timeout` seconds; nil on timeout, [] at EOF or reset.
    func read(timeout: Double) throws -> [UInt8]? {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32(timeout * 1000))
        if ready == 0 { return nil }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &buffer, buffer.count, 0)
        if count < 0 {
            if errno == ECONNRESET { return [] }
            throw SocketFailure(description: "recv: \(String(cString: strerror(errno)))")
        }
        return Array(buffer[0..<count])
    }

    private var pending: [UInt8] = []

    /// Reads one response (headers and a Content-Length body) within `timeout` seconds.
    func readResponse(timeout: Double = 10) throws -> HTTPResult {
        let deadline = Date().addingTimeInterval(timeout)
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while true {
            if let end = find(separator, in: pending) {
                let head = try parseResponse(Data(pending[0..<end + 4]))
                let length = Int(head.headers["content-length"] ?? "0") ?? 0
                if pending.count >= end + 4 + length {
                    var result = head
                    result.body = Data(pending[(end + 4)..<(end + 4 + length)])
                    pending.removeFirst(end + 4 + length)
                    if result.status == 100 { continue }
                    return result
                }
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0, let chunk = try read(timeout: remaining) else {
                throw SocketFailure(description: "no complete response within \(timeout)s; have \(pending.count) bytes")
            }
            guard !chunk.isEmpty else {
                throw SocketFailure(description: "connection closed after \(pending.count) bytes")
            }
            pending += chunk
        }
    }

    /// Waits until the server closes the connection; true when it did within `timeout` seconds.
    func waitForClose(timeout: Double) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0, let chunk = try read(timeout: remaining) else { return false }
            if chunk.isEmpty { return true }
        }
    }

    private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index..<index + needle.count].elementsEqual(needle) {
            return index
        }
        return nil
    }
}

/// A listening (or bound-then-closed) Unix socket made by the test itself.
func makeListeningSocket(_ path: String, listen shouldListen: Bool = true) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SocketFailure(description: "socket: \(errno)") }
    guard let address = UnixSocketAddress(path) else { throw SocketFailure(description: "\(path): too long for sun_path") }
    let bound = address.withSockaddr { bind(fd, $0, $1) }
    guard bound == 0 else { throw SocketFailure(description: "bind \(path): \(String(cString: strerror(errno)))") }
    if shouldListen {
        guard listen(fd, 64) == 0 else { throw SocketFailure(description: "listen: \(errno)") }
    }
    return fd
}

func fileMode(_ path: String) -> mode_t? {
    var status = stat()
    guard lstat(path, &status) == 0 else { return nil }
    return status.st_mode
}
