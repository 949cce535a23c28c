import CSystemd  // its <sys/socket.h> gives SOCK_DGRAM/SOCK_CLOEXEC in every build mode
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An `sd_notify` client: tells systemd about readiness, status, watchdog
/// pings and shutdown, over the `AF_UNIX` datagram socket named by
/// `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
///
/// Written in Swift rather than wrapping `sd_notify` so the socket can be
/// injected through an environment dictionary (tests need not touch the
/// process environment) and failures carry the call and errno. Without
/// `NOTIFY_SOCKET` (not started by systemd, or `Type=simple`) every call is a
/// no-op. Each message opens its own socket, as `sd_notify` does, so the
/// value is trivially `Sendable`.
public struct SystemdNotifier: Sendable {
    /// Where messages go, parsed from `NOTIFY_SOCKET`.
    enum Address: Sendable, Hashable {
        /// A filesystem path.
        case path(String)
        /// An abstract socket name (without the leading `@`/NUL).
        case abstract(String)
    }

    /// The raw `NOTIFY_SOCKET` value, or `nil` when notifications are off.
    public let notifySocket: String?
    /// How often systemd expects ``watchdog()`` (the unit's `WatchdogSec=`),
    /// or `nil` if the watchdog is off or meant for another process. Ping at
    /// half this interval, as sd_watchdog_enabled(3) advises.
    public let watchdogInterval: Duration?

    /// True when `NOTIFY_SOCKET` is set, i.e. messages are actually sent.
    public var isEnabled: Bool { self.notifySocket != nil }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from
    /// `environment`; `pid` is compared with `WATCHDOG_PID`.
    public init(environment: [String: String], pid: pid_t = getpid()) {
        if let socket = environment["NOTIFY_SOCKET"], !socket.isEmpty {
            self.notifySocket = socket
        } else {
            self.notifySocket = nil
        }
        self.watchdogInterval = Self.watchdogInterval(environment: environment, pid: pid)
    }

    /// Reads the variables from this process's environment.
    public init() {
        self.init(environment: processEnvironment(["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]))
    }

    /// `READY=1`: startup finished (for `Type=notify` units).
    public func ready() throws(SystemdError) { try self.send("READY=1") }

    /// `STATUS=...`: a one-line status shown by `systemctl status`; newlines
    /// would end the assignment, so they become spaces.
    public func status(_ text: String) throws(SystemdError) {
        let oneLine = String(text.map { $0.isNewline ? " " : $0 })
        try self.send("STATUS=" + oneLine)
    }

    /// `WATCHDOG=1`: the keep-alive ping for `WatchdogSec=`.
    public func watchdog() throws(SystemdError) { try self.send("WATCHDOG=1") }

    /// `STOPPING=1`: shutdown has begun.
    public func stopping() throws(SystemdError) { try self.send("STOPPING=1") }

    /// `RELOADING=1` with `MONOTONIC_USEC`, which `Type=notify-reload` requires
    /// to match the reload with its later `READY=1`.
    public func reloading() throws(SystemdError) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        try self.send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    /// Sends `state` as one datagram (newline-separated `KEY=value`
    /// assignments, see sd_notify(3)). A no-op without `NOTIFY_SOCKET`.
    public func send(_ state: String) throws(SystemdError) {
        guard let notifySocket else { return }
        let address = try Self.parseAddress(notifySocket)
        try Self.sendDatagram(Array(state.utf8), to: address, named: notifySocket)
    }

    static func parseAddress(_ value: String) throws(SystemdError) -> Address {
        let maxLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        if value.hasPrefix("@") {
            let name = String(value.dropFirst())
            // One byte of sun_path is the leading NUL of an abstract name.
            guard !name.isEmpty, name.utf8.count <= maxLength - 1 else {
                throw SystemdError(code: .invalidEnvironment, detail: "NOTIFY_SOCKET=\(value): bad abstract socket name")
            }
            return .abstract(name)
        }
        if value.hasPrefix("/") {
            guard value.utf8.count < maxLength else {
                throw SystemdError(code: .invalidEnvironment, detail: "NOTIFY_SOCKET=\(value): path too long for sockaddr_un")
            }
            return .path(value)
        }
        throw SystemdError(code: .unsupportedAddress, detail: "NOTIFY_SOCKET=\(value): only paths and @abstract names are supported")
    }

    private static func sendDatagram(_ message: [UInt8], to address: Address, named: String) throws(SystemdError) {
        let fd = try retryingSyscall("socket", detail: "AF_UNIX, SOCK_DGRAM") {
            socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        defer { close(fd) }

        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let length: Int = withUnsafeMutableBytes(of: &addr.sun_path) { path in
            switch address {
            case .path(let p):
                let bytes = Array(p.utf8)
                path.copyBytes(from: bytes)  // the rest of sun_path is already zero (NUL)
                return pathOffset + bytes.count + 1
            case .abstract(let name):
                let bytes = Array(name.utf8)
                path[0] = 0
                UnsafeMutableRawBufferPointer(rebasing: path[1...]).copyBytes(from: bytes)
                // Abstract names are exactly the given bytes: no trailing NUL.
                return pathOffset + 1 + bytes.count
            }
        }

        let sent = try retryingSyscall("sendto", detail: named) {
            message.withUnsafeBytes { buffer in
                withUnsafePointer(to: &addr) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                        sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), sockaddrPointer, socklen_t(length))
                    }
                }
            }
        }
        if sent != message.count {
            throw SystemdError.systemCall("sendto", errno: EMSGSIZE, detail: "\(named): short datagram \(sent) of \(message.count) bytes")
        }
    }

    /// `WATCHDOG_USEC` as a duration, if positive and (when `WATCHDOG_PID` is
    /// set) addressed to `pid`; a malformed value disables the watchdog, as
    /// `sd_watchdog_enabled` does.
    static func watchdogInterval(environment: [String: String], pid: pid_t) -> Duration? {
        guard let usecText = environment["WATCHDOG_USEC"],
              let usec = UInt64(usecText), usec > 0, usec <= UInt64(Int64.max)
        else { return nil }
        if let pidText = environment["WATCHDOG_PID"] {
            guard let watchdogPID = pid_t(pidText), watchdogPID == pid else { return nil }
        }
        return .microseconds(Int64(usec))
    }
}
