#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemdIntegration
import Testing

@Suite("SystemdNotifier")
struct SystemdNotifierTests {
    /// Sends every kind of message and reads each back from `receiver`.
    private func exchange(_ notifier: SystemdNotifier, _ receiver: Socket) throws {
        try notifier.ready()
        #expect(try receiver.receiveDatagram() == "READY=1")
        try notifier.status("reaped 3 volumes\nnext cycle in 60s")
        #expect(try receiver.receiveDatagram() == "STATUS=reaped 3 volumes next cycle in 60s")
        try notifier.watchdog()
        #expect(try receiver.receiveDatagram() == "WATCHDOG=1")
        try notifier.reloading()
        let reloading = try receiver.receiveDatagram().split(separator: "\n")
        #expect(reloading.count == 2)
        #expect(reloading.first == "RELOADING=1")
        #expect(reloading.last.map { $0.hasPrefix("MONOTONIC_USEC=") && UInt64($0.dropFirst(15)) != nil } == true)
        try notifier.stopping()
        #expect(try receiver.receiveDatagram() == "STOPPING=1")
        try notifier.send("FDSTORE=0\nEXTEND_TIMEOUT_USEC=5000000")
        #expect(try receiver.receiveDatagram() == "FDSTORE=0\nEXTEND_TIMEOUT_USEC=5000000")
    }

    @Test("sends to a socket path")
    func pathSocket() throws {
        let dir = try TempDirectory()
        let path = dir.path + "/notify"
        let receiver = try Socket.datagram(boundTo: path)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path])
        #expect(notifier.isEnabled)
        #expect(notifier.notifySocket == path)
        try exchange(notifier, receiver)
    }

    @Test("sends to an abstract socket name")
    func abstractSocket() throws {
        let name = "@" + uniqueName("vr-notify")
        let receiver = try Socket.datagram(boundTo: name)
        try exchange(SystemdNotifier(environment: ["NOTIFY_SOCKET": name]), receiver)
    }

    @Test("is Sendable: used from concurrent tasks")
    func concurrentUse() async throws {
        let dir = try TempDirectory()
        let path = dir.path + "/notify"
        let receiver = try Socket.datagram(boundTo: path)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { try notifier.watchdog() }
            }
            try await group.waitForAll()
        }
        for _ in 0..<4 {
            #expect(try receiver.receiveDatagram() == "WATCHDOG=1")
        }
    }

    @Test("without NOTIFY_SOCKET every call is a no-op")
    func disabled() throws {
        for environment in [[:], ["NOTIFY_SOCKET": ""]] {
            let notifier = SystemdNotifier(environment: environment)
            #expect(!notifier.isEnabled)
            try notifier.ready()
            try notifier.status("x")
            try notifier.watchdog()
            try notifier.reloading()
            try notifier.stopping()
            try notifier.send("X=1")
        }
    }

    @Test("a missing socket throws the call and errno")
    func missingSocket() throws {
        let dir = try TempDirectory()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": dir.path + "/nobody-listens"])
        let error = try #require(throws: SystemdError.self) { try notifier.ready() }
        #expect(error.code == .systemCall)
        #expect(error.call == "sendto")
        #expect(error.errno == ENOENT)
        #expect(error.description.contains("nobody-listens"))
    }

    @Test("addresses other than paths and @names are refused", arguments: ["vsock:2:1234", "relative/sock", "@"])
    func badAddress(address: String) throws {
        let error = try #require(throws: SystemdError.self) {
            try SystemdNotifier(environment: ["NOTIFY_SOCKET": address]).ready()
        }
        #expect(error.code != .systemCall)
        #expect(error.description.contains("NOTIFY_SOCKET"))
    }

    @Test(
        "watchdog interval from WATCHDOG_USEC, for this pid only",
        arguments: [
            (["WATCHDOG_USEC": "3000000"], Duration.seconds(3)),
            (["WATCHDOG_USEC": "1500", "WATCHDOG_PID": "4242"], Duration.microseconds(1500)),
            (["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "4243"], nil),
            (["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "x"], nil),
            (["WATCHDOG_USEC": "0"], nil),
            (["WATCHDOG_USEC": "-5"], nil),
            (["WATCHDOG_USEC": "soon"], nil),
            (["WATCHDOG_PID": "4242"], nil),
            ([:], nil),
        ] as [([String: String], Duration?)]
    )
    func watchdogInterval(environment: [String: String], expected: Duration?) {
        #expect(SystemdNotifier(environment: environment, pid: 4242).watchdogInterval == expected)
    }

    @Test("the default initializer reads the process environment without failing")
    func processEnvironmentDefault() {
        // Only reads: tests must not change the shared process environment.
        let notifier = SystemdNotifier()
        #expect(notifier.isEnabled == (getenv("NOTIFY_SOCKET").map { $0.pointee != 0 } ?? false))
    }
}
