#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// This process's resources as the kernel reports them in `/proc/self`, for
/// the standard `process_*` series every Prometheus client exports
/// (swift-prometheus has no process collector). Every read is a bounded,
/// non-blocking read of procfs (`RegularFileReader`), which answers from
/// memory: no disk or network behind it.
public struct ProcessSelf: Sendable, Hashable {
    /// User plus system CPU time, seconds.
    public var cpuSeconds: Double
    /// Resident set size, bytes.
    public var residentBytes: UInt64
    /// Virtual memory size, bytes.
    public var virtualBytes: UInt64
    /// Open file descriptors.
    public var openFDs: Int
    /// The soft `RLIMIT_NOFILE`.
    public var maxFDs: UInt64

    public init(cpuSeconds: Double, residentBytes: UInt64, virtualBytes: UInt64, openFDs: Int, maxFDs: UInt64) {
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
        self.virtualBytes = virtualBytes
        self.openFDs = openFDs
        self.maxFDs = maxFDs
    }

    /// Why `/proc/self` could not be read.
    public struct ReadError: Error, Sendable, CustomStringConvertible {
        public var file: String
        public var message: String
        public var description: String { "\(file): \(message)" }
    }

    static let statPath = "/proc/self/stat"

    /// Reads `/proc/self/stat`, `/proc/self/fd` and the fd limit now.
    public static func read() throws(ReadError) -> ProcessSelf {
        let stat = try StatFields.read()
        let ticks = Double(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        let page = UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 1))
        return ProcessSelf(
            cpuSeconds: Double(stat.utime + stat.stime) / ticks, residentBytes: stat.rssPages * page,
            virtualBytes: stat.vsize, openFDs: try openDescriptors(), maxFDs: try descriptorLimit()
        )
    }

    /// When this process started, Unix seconds: boot time (`btime` of
    /// `/proc/stat`) plus its start in clock ticks since boot. Fixed for the
    /// process's life: read it once.
    public static func startTime() throws(ReadError) -> Double {
        let stat = try StatFields.read()
        // /proc/stat grows with CPUs and interrupts; 4 MiB covers large machines.
        let text = try readText("/proc/stat", limit: 4 << 20)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = line.split(separator: " ").last.flatMap({ Double($0) }) else {
            throw ReadError(file: "/proc/stat", message: "no btime line")
        }
        let ticks = Double(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        return boot + Double(stat.startTicks) / ticks
    }

    /// The fields of `/proc/self/stat` the series need (proc(5) numbers them
    /// from 1; the command name, field 2, is in parentheses and may hold
    /// spaces and parentheses itself, so fields are counted from the last `)`).
    struct StatFields {
        var utime: UInt64
        var stime: UInt64
        var startTicks: UInt64
        var vsize: UInt64
        var rssPages: UInt64

        static func read() throws(ReadError) -> StatFields {
            let text = try readText(statPath, limit: 4096)
            guard let close = text.lastIndex(of: ")") else { throw ReadError(file: statPath, message: "no command name") }
            // After ")": field 3 (state) at index 0, so field n is at n - 3.
            let fields = text[text.index(after: close)...].split(separator: " ")
            func field(_ number: Int) throws(ReadError) -> UInt64 {
                let index = number - 3
                guard index < fields.count, let value = UInt64(fields[index].trimmingTrailingNewline) else {
                    throw ReadError(file: statPath, message: "field \(number) missing or not a number")
                }
                return value
            }
            return StatFields(utime: try field(14), stime: try field(15), startTicks: try field(22), vsize: try field(23), rssPages: try field(24))
        }
    }

    /// Entries of `/proc/self/fd`, less the descriptor that lists them.
    static func openDescriptors() throws(ReadError) -> Int {
        let path = "/proc/self/fd"
        do {
            let fd = try Syscall.openDirectory(nil, path)
            defer { Syscall.close(fd) }
            return max(try Syscall.readDirectory(fd, path: path).count - 1, 0)
        } catch {
            throw ReadError(file: path, message: "\(error)")
        }
    }

    /// The soft limit on open files: `Max open files` of
    /// `/proc/self/limits` (`unlimited`: the largest value).
    static func descriptorLimit() throws(ReadError) -> UInt64 {
        let path = "/proc/self/limits"
        let text = try readText(path, limit: 8192)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") }),
              let soft = line.dropFirst("Max open files".count).split(separator: " ").first else {
            throw ReadError(file: path, message: "no Max open files line")
        }
        if soft == "unlimited" { return .max }
        guard let value = UInt64(soft) else { throw ReadError(file: path, message: "Max open files is not a number") }
        return value
    }

    /// Whether the effective capability set (`CapEff` of `/proc/self/status`)
    /// holds capability number `capability` (e.g. 28, CAP_LEASE).
    public static func hasEffectiveCapability(_ capability: Int) throws(ReadError) -> Bool {
        let path = "/proc/self/status"
        let text = try readText(path, limit: 64 << 10)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(String(line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }), radix: 16) else {
            throw ReadError(file: path, message: "no CapEff line")
        }
        return capability < 64 && mask & (1 << UInt64(capability)) != 0
    }

    static func readText(_ path: String, limit: Int) throws(ReadError) -> String {
        do {
            return String(decoding: try RegularFileReader.read(path, limit: limit, followSymlinks: true), as: UTF8.self)
        } catch {
            throw ReadError(file: path, message: "\(error)")
        }
    }
}

extension Substring {
    fileprivate var trimmingTrailingNewline: Substring { last == "\n" ? dropLast() : self }
}
