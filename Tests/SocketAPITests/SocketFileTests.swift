#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import SocketAPI
import TestSupport
import Testing

/// The socket file: directory, mode, group, stale and live sockets, socket
/// activation, removal at shutdown.
@Suite("Socket API socket file", .serialized)
struct SocketFileTests {
    @Test("The socket is created with mode 0660 in a new 0755 directory, and removed at the end")
    func modeAndRemoval() async throws {
        var path = ""
        try await withServer { _, socket in
            path = socket
            let mode = try #require(fileMode(socket))
            #expect(mode & S_IFMT == S_IFSOCK)
            #expect(mode & 0o7777 == 0o660)
            #expect(fileMode(SocketDirectoryPath.parent(of: socket)).map { $0 & 0o7777 } == 0o755)
            // No temporary name is left beside it.
            let entries = try FileManager.default.contentsOfDirectory(atPath: SocketDirectoryPath.parent(of: socket))
            #expect(entries == ["api.sock"])
            #expect(try await curl(socket, "/healthz").status == 200)
        }
        #expect(fileMode(path) == nil, "the socket file is removed after run() ends")
    }

    @Test("socketGroup chowns the socket to that group", .enabled(if: isRoot, "needs root: chown to another group"))
    func group() async throws {
        let name = "daemon"
        let gid = try #require(getgrnam(name)?.pointee.gr_gid, "the test needs a '\(name)' group")
        try await withServer(configure: { $0.socketGroup = name }) { _, socket in
            var status = stat()
            #expect(lstat(socket, &status) == 0)
            #expect(status.st_gid == gid)
            #expect(status.st_uid == getuid())
            #expect(status.st_mode & 0o7777 == 0o660)
        }
    }

    @Test("An unknown socketGroup is an error at init, naming it")
    func unknownGroup() throws {
        let configuration = APIServerConfiguration(socketPath: "/tmp/unused.sock", socketGroup: "no-such-group-vr")
        #expect {
            _ = try APIServer(
                configuration: configuration, provider: FakeProvider(), registry: PrometheusCollectorRegistry(), logger: quietLogger
            )
        } throws: { error in
            guard let error = error as? APIServerError else { return false }
            return error.code == .unknownGroup && error.message.contains("no-such-group-vr")
        }
    }

    @Test("A stale socket from a crash is replaced")
    func staleSocket() async throws {
        let directory = try SocketDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.root + "/run", withIntermediateDirectories: true)
        // Bound, never listened on, then closed without unlink: connect gets ECONNREFUSED.
        let fd = try makeListeningSocket(directory.socketPath, listen: false)
        close(fd)
        #expect(fileMode(directory.socketPath).map { $0 & S_IFMT } == S_IFSOCK)
        try await runServer(socketPath: directory.socketPath) { (socket: String) async throws in
            #expect(try await curl(socket, "/healthz").status == 200)
            #expect(fileMode(socket).map { $0 & 0o7777 } == 0o660)
        }
    }

    @Test("A live socket is refused: another volume-reaper is listening")
    func liveSocket() async throws {
        let directory = try SocketDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.root + "/run", withIntermediateDirectories: true)
        let fd = try makeListeningSocket(directory.socketPath)
        defer { close(fd) }
        // Refused when the server is made: a startup error before anything runs.
        #expect {
            _ = try APIServer(
                configuration: APIServerConfiguration(socketPath: directory.socketPath), provider: FakeProvider(),
                registry: PrometheusCollectorRegistry(), logger: quietLogger
            )
        } throws: { error in
            guard let error = error as? APIServerError else { return false }
            return error.code == .socketInUse
                && error.message == "another volume-reaper is listening on \(directory.socketPath)"
        }
        // The rival's socket is still there and still its own.
        #expect(fileMode(directory.socketPath).map { $0 & S_IFMT } == S_IFSOCK)
        _ = try RawClient(directory.socketPath)
    }

    @Test("A file that is not a socket is refused and left alone")
    func notASocket() async throws {
        let directory = try SocketDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.root + "/run", withIntermediateDirectories: true)
        try "precious".write(toFile: directory.socketPath, atomically: false, encoding: .utf8)
        #expect {
            _ = try APIServer(
                configuration: APIServerConfiguration(socketPath: directory.socketPath), provider: FakeProvider(),
                registry: PrometheusCollectorRegistry(), logger: quietLogger
            )
        } throws: { error in
            guard let error = error as? APIServerError else { return false }
            return error.code == .notASocket && error.message.contains(directory.socketPath)
        }
        #expect(try String(contentsOfFile: directory.socketPath, encoding: .utf8) == "precious")
    }

    @Test("Socket activation: the inherited listening descriptor is served, and its file is not removed")
    func inheritedDescriptor() async throws {
        let directory = try SocketDirectory()
        defer { directory.remove() }
        let path = directory.root + "/activated.sock"
        let fd = try makeListeningSocket(path)
        var before = stat()
        fstat(fd, &before)
        let server = try APIServer(
            configuration: APIServerConfiguration(socketPath: path, inheritedListenerFD: fd), provider: FakeProvider(),
            registry: PrometheusCollectorRegistry(), logger: quietLogger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            await server.waitUntilListening()
            let response = try await curl(path, "/v1/volumes?state=idle")
            #expect(response.status == 200)
            #expect(try response.json(VolumeList.self).volumes.count == 1)
            group.cancelAll()
            try await group.waitForAll()
        }
        #expect(fileMode(path).map { $0 & S_IFMT } == S_IFSOCK, "systemd owns the socket file")
        // The server closed the descriptor it was given. Tests run in parallel,
        // so the number may already name another file: compare identities.
        var after = stat()
        let stillOurs = fstat(fd, &after) == 0 && after.st_ino == before.st_ino && after.st_dev == before.st_dev
        #expect(!stillOurs)
    }

    @Test("An inherited descriptor that is no stream socket is an error naming it")
    func inheritedNotASocket() async throws {
        let pipeFDs = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { pipeFDs.deallocate() }
        #expect(pipe(pipeFDs) == 0)
        defer { close(pipeFDs[0]); close(pipeFDs[1]) }
        let server = try APIServer(
            configuration: APIServerConfiguration(socketPath: "/run/x.sock", inheritedListenerFD: pipeFDs[0]),
            provider: FakeProvider(), registry: PrometheusCollectorRegistry(), logger: quietLogger
        )
        await #expect {
            try await server.run()
        } throws: { error in
            guard let error = error as? APIServerError else { return false }
            return error.code == .inheritedDescriptor && error.message.contains("descriptor \(pipeFDs[0])")
        }
    }

    @Test("Graceful shutdown in a ServiceGroup: run() returns and the socket file goes")
    func gracefulShutdown() async throws {
        let directory = try SocketDirectory()
        defer { directory.remove() }
        let server = try APIServer(
            configuration: APIServerConfiguration(socketPath: directory.socketPath), provider: FakeProvider(),
            registry: PrometheusCollectorRegistry(), logger: quietLogger
        )
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [.init(service: server)], logger: quietLogger)
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serviceGroup.run() }
            await server.waitUntilListening()
            let path = directory.socketPath
            // An idle keep-alive connection must not hold shutdown up: it is closed.
            let client = try await onThread { try RawClient(path) }
            let status = try await onThread { () -> Int in
                client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                return try client.readResponse().status
            }
            #expect(status == 200)
            #expect(try await curl(path, "/healthz").status == 200)
            await serviceGroup.triggerGracefulShutdown()
            #expect(try await onThread { try client.waitForClose(timeout: 5) })
            try await group.waitForAll()
        }
        #expect(fileMode(directory.socketPath) == nil)
    }

    /// Runs a server at `socketPath` (made by the test) for `body`.
    private func runServer(socketPath: String, _ body: (String) async throws -> Void) async throws {
        let server = try APIServer(
            configuration: APIServerConfiguration(socketPath: socketPath), provider: FakeProvider(),
            registry: PrometheusCollectorRegistry(), logger: quietLogger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            await server.waitUntilListening()
            try await body(socketPath)
            group.cancelAll()
            try await group.waitForAll()
        }
    }
}

enum SocketDirectoryPath {
    static func parent(of path: String) -> String { (path as NSString).deletingLastPathComponent }
}
