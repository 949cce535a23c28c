#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemdIntegration
import Testing

@Suite("ListenFDs")
struct ListenFDsTests {
    @Test("descriptors start at fd 3 and take their names from LISTEN_FDNAMES")
    func namedDescriptors() throws {
        let fds = try ListenFDs(
            environment: ["LISTEN_PID": "777", "LISTEN_FDS": "3", "LISTEN_FDNAMES": "api:metrics:"],
            pid: 777
        )
        #expect(
            fds.descriptors == [
                .init(fd: 3, name: "api"), .init(fd: 4, name: "metrics"), .init(fd: 5, name: ""),
            ]
        )
    }

    @Test("without LISTEN_FDNAMES every descriptor is named unknown")
    func unnamedDescriptors() throws {
        let fds = try ListenFDs(environment: ["LISTEN_PID": "777", "LISTEN_FDS": "2"], pid: 777)
        #expect(fds.descriptors.map(\.fd) == [3, 4])
        #expect(fds.descriptors.map(\.name) == ["unknown", "unknown"])
    }

    @Test(
        "variables meant for another process, or absent, mean no descriptors",
        arguments: [
            ["LISTEN_PID": "778", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"],
            ["LISTEN_FDS": "2"],
            ["LISTEN_PID": "777"],
            ["LISTEN_PID": "777", "LISTEN_FDS": "0"],
            [:],
        ]
    )
    func noDescriptors(environment: [String: String]) throws {
        #expect(try ListenFDs(environment: environment, pid: 777).isEmpty)
    }

    @Test(
        "malformed variables throw, naming the variable",
        arguments: [
            (["LISTEN_PID": "me", "LISTEN_FDS": "1"], "LISTEN_PID"),
            (["LISTEN_PID": "777", "LISTEN_FDS": "many"], "LISTEN_FDS"),
            (["LISTEN_PID": "777", "LISTEN_FDS": "-1"], "LISTEN_FDS"),
            (["LISTEN_PID": "777", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "only-one"], "LISTEN_FDNAMES"),
            (["LISTEN_PID": "777", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"], "LISTEN_FDNAMES"),
        ]
    )
    func malformed(environment: [String: String], variable: String) throws {
        let error = try #require(throws: SystemdError.self) { try ListenFDs(environment: environment, pid: 777) }
        #expect(error.code == .invalidEnvironment)
        #expect(error.description.contains(variable))
    }

    @Test("setCloseOnExec marks real descriptors FD_CLOEXEC")
    func closeOnExec() throws {
        let socket = try Socket(domain: AF_UNIX, type: Int32(SOCK_STREAM.rawValue), cloexec: false)
        #expect(try check("fcntl", fcntl(socket.fd, F_GETFD)) & FD_CLOEXEC == 0)
        try ListenFDs(descriptors: [.init(fd: socket.fd, name: "api")]).setCloseOnExec()
        #expect(try check("fcntl", fcntl(socket.fd, F_GETFD)) & FD_CLOEXEC != 0)
    }

    @Test("setCloseOnExec on a descriptor that is not open throws fcntl's EBADF")
    func closeOnExecBadDescriptor() throws {
        // Far above any descriptor the test process opens; a just-closed fd
        // could be reused by a test running in parallel.
        let fd: Int32 = 1_000_000
        let error = try #require(throws: SystemdError.self) {
            try ListenFDs(descriptors: [.init(fd: fd, name: "gone")]).setCloseOnExec()
        }
        #expect(error.call == "fcntl")
        #expect(error.errno == EBADF)
    }

    @Test("unixListener picks the first listening AF_UNIX stream socket")
    func unixListener() throws {
        let dir = try TempDirectory()
        let datagram = try Socket.datagram(boundTo: dir.path + "/dgram")
        let notListening = try Socket(domain: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
        try notListening.bind(unix: dir.path + "/idle")
        let tcp = try Socket(domain: AF_INET, type: Int32(SOCK_STREAM.rawValue))
        try tcp.bindLoopbackTCP()
        try tcp.listen()
        let listener = try Socket(domain: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
        try listener.bind(unix: dir.path + "/api.sock")
        try listener.listen()
        let second = try Socket(domain: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
        try second.bind(unix: dir.path + "/other.sock")
        try second.listen()

        let fds = ListenFDs(descriptors: [
            .init(fd: datagram.fd, name: "api"),
            .init(fd: notListening.fd, name: "api"),
            .init(fd: tcp.fd, name: "api"),
            .init(fd: listener.fd, name: "api"),
            .init(fd: second.fd, name: "other"),
        ])
        #expect(fds.unixListener(named: nil) == listener.fd)
        #expect(fds.unixListener(named: "api") == listener.fd)
        #expect(fds.unixListener(named: "other") == second.fd)
        #expect(fds.unixListener(named: "metrics") == nil)
        #expect(ListenFDs(descriptors: [.init(fd: tcp.fd, name: "api")]).unixListener(named: nil) == nil)
    }
}
