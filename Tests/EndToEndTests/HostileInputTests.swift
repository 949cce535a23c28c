import Foundation
import Testing
import TestSupport

/// Issue 12's policy, config and command-line reproducers, run against the
/// binary as an operator would: each must end within a couple of seconds,
/// without a signal, with one short escaped line naming what is wrong.
@Suite("hostile policy, config and flags")
struct HostileInputTests {
    struct Outcome {
        var status: Int32
        var signalled: Bool
        var timedOut: Bool
        var seconds: Double
        var stdout: String
        var stderr: String
        /// The child's peak resident set (`VmHWM`), as last sampled.
        var peakRSSKiB = 0

        /// The refusal as a user sees it: a failure exit, no signal, prompt, one line.
        var isCleanRefusal: Bool {
            !signalled && !timedOut && status != 0 && seconds < 5
                && stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1
        }
    }

    /// Runs the binary with a hard timeout (a hang must fail the test, not
    /// stall it); a child whose resident set passes `killAboveKiB` is killed
    /// too (a runaway read must not take the test machine with it).
    func run(_ arguments: [String], timeout: TimeInterval = 15, killAboveKiB: Int = 2 << 20) throws -> Outcome {
        let scratch = try TemporaryDirectory("hostile-run")
        defer { try? FileManager.default.removeItem(atPath: scratch.path) }
        let out = scratch.appending("out"), err = scratch.appending("err")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: PackagePaths.binary)
        process.arguments = arguments
        // No crash reporter: a trap must show as a signal at once, not after a backtrace.
        process.environment = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        let started = Date()
        try process.run()
        var timedOut = false
        var peak = 0
        while process.isRunning {
            peak = max(peak, Self.peakRSSKiB(process.processIdentifier) ?? 0)
            if Date().timeIntervalSince(started) > timeout || peak > killAboveKiB {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
            }
            usleep(20_000)
        }
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus, signalled: process.terminationReason == .uncaughtSignal, timedOut: timedOut,
            seconds: Date().timeIntervalSince(started),
            stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
            stderr: String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: err))) ?? Data(), as: UTF8.self),
            peakRSSKiB: peak
        )
    }

    /// `VmHWM` of a running process, in KiB.
    static func peakRSSKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }

    func policyCheck(_ yaml: String) throws -> Outcome {
        let directory = try TemporaryDirectory("hostile-policy")
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        let file = directory.appending("policy.yaml")
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: file))
        return try run(["policy", "check", file])
    }

    /// A flow mapping of anchors `a0`...`a<levels>`, each a list of nine
    /// aliases to the one before: 9^levels nodes once expanded.
    static func laughs(levels: Int) -> String {
        var parts = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        for level in 1...levels {
            parts.append("a\(level): &a\(level) [\(Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", "))]")
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    // MARK: Crashes

    @Test("a policy duration of 2^63 s or more is refused with the range, not a trap", arguments: [
        "106751991167301d", "9223372036854775808s", "1000000000000000000000000000000ms", "99999999999999999999999999999999999999d",
    ])
    func hugeDuration(_ value: String) throws {
        let outcome = try policyCheck("idle:\n  after: \(value)\n")
        #expect(outcome.isCleanRefusal, "\(outcome)")
        #expect(outcome.stderr.contains("idle.after: must be from 1s to 365d"), "\(outcome.stderr)")
    }

    @Test("run --reconcile-interval out of range is refused before anything starts", arguments: ["1e300", "nan", "inf", "-inf", "0.01", "1e-300"])
    func hugeReconcileFlag(_ value: String) throws {
        let directory = try TemporaryDirectory("hostile-flag")
        defer { directory.remove() }
        let outcome = try run([
            "run", "--plan", "--reconcile-interval=\(value)", "--kubelet-root", directory.appending("kubelet"),
            "--manifests", directory.appending("manifests"), "--state-dir", directory.appending("state"),
            "--socket", directory.appending("api.sock"), "--log-target", "stderr",
        ])
        #expect(!outcome.signalled && !outcome.timedOut && outcome.status != 0, "\(outcome)")
        #expect(outcome.stderr.contains("--reconcile-interval must be from 100ms to 1d"), "\(outcome.stderr)")
    }

    @Test("config intervals out of range are refused naming the setting", arguments: ["reconcileInterval", "flushInterval", "pollInterval"])
    func hugeConfigInterval(_ key: String) throws {
        let directory = try TemporaryDirectory("hostile-config")
        defer { directory.remove() }
        let config = directory.appending("config.yaml")
        try """
            kubeletRoot: \(directory.appending("kubelet"))
            manifests: \(directory.appending("manifests"))
            stateDir: \(directory.appending("state"))
            socket: \(directory.appending("api.sock"))
            logTarget: stderr
            \(key): 106751991167301d
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let outcome = try run(["run", "--plan", "--config", config])
        #expect(outcome.isCleanRefusal, "\(outcome)")
        #expect(outcome.stderr.contains("\(key): must be from 100ms to 1d"), "\(outcome.stderr)")
    }

    // MARK: Hangs

    @Test("an alias to a nested anchor used as a mapping key is refused at once")
    func aliasAsKey() throws {
        let outcome = try policyCheck("idle:\n  after: \(Self.laughs(levels: 9))\n  ? *a9\n  : 30m\n")
        #expect(outcome.isCleanRefusal, "\(outcome)")
        // Even a small aliased key is refused, at the alias.
        let small = try policyCheck("idle:\n  after: &k 30m\n  ? *k\n  : 1h\n")
        #expect(small.isCleanRefusal, "\(small)")
        #expect(small.stderr.contains("line 3, column 5: an alias (*k) used as a mapping key"), "\(small.stderr)")
    }

    @Test("billion laughs in a refused field: refused at once by the node budget, the message short")
    func billionLaughs() throws {
        let outcome = try policyCheck("idle:\n  after: \(Self.laughs(levels: 8))\n")
        #expect(outcome.isCleanRefusal, "\(outcome)")
        #expect(outcome.stderr.contains("nodes"), "\(outcome.stderr)")
        #expect(outcome.stderr.count < 400, "\(outcome.stderr.count) bytes")
    }

    @Test("a refused field holding an aliased structure within the budget: the message shows an excerpt only")
    func aliasedValueExcerpt() throws {
        let outcome = try policyCheck("idle:\n  after: \(Self.laughs(levels: 4))\n")
        #expect(outcome.isCleanRefusal, "\(outcome)")
        #expect(outcome.stderr.contains("idle.after"), "\(outcome.stderr)")
        #expect(outcome.stderr.count < 400, "\(outcome.stderr.count) bytes: \(outcome.stderr)")
    }

    @Test("a policy or config path that is a FIFO is refused, not waited on", arguments: ["policy", "config"])
    func fifo(_ kind: String) throws {
        let directory = try TemporaryDirectory("hostile-fifo")
        defer { directory.remove() }
        let fifo = directory.appending("\(kind).yaml")
        #expect(mkfifo(fifo, 0o600) == 0)
        let outcome = kind == "policy" ? try run(["policy", "check", fifo]) : try run([
            "--plan", "--config", fifo, "--kubelet-root", directory.appending("kubelet"),
            "--manifests", directory.appending("manifests"), "--state-dir", directory.appending("state"),
        ])
        #expect(outcome.isCleanRefusal, "\(outcome)")
        #expect(outcome.stderr.contains("a FIFO, not a regular file"), "\(outcome.stderr)")
    }

    // MARK: Messages

    @Test("newlines and escapes in a value are shown escaped, on one line")
    func escapedValue() throws {
        let outcome = try policyCheck("idle:\n  after: \"\\e[31mred\\nsecond line\"\n")
        #expect(outcome.isCleanRefusal, "\(outcome)")
        #expect(outcome.stderr.contains("\\u{1b}[31mred\\nsecond line"), "\(outcome.stderr)")
        #expect(!outcome.stderr.contains("\u{1b}"))
    }

    @Test("a 500 KB value is cut to a short excerpt")
    func hugeValue() throws {
        let outcome = try policyCheck("pods:\n  excludeNamespaces: [\"\(String(repeating: "x", count: 500_000))\"]\n")
        #expect(outcome.isCleanRefusal, "\(outcome)")
        #expect(outcome.stderr.count < 400, "\(outcome.stderr.count) bytes")
        #expect(outcome.stderr.contains("xxx..."))
    }

    @Test("no message names library internals", arguments: [
        String(repeating: "[", count: 2000),
        "idle:\n  ? [a]\n  : 1\n  ? [a]\n  : 2\n",
    ])
    func noInternals(_ yaml: String) throws {
        let outcome = try policyCheck(yaml)
        #expect(outcome.isCleanRefusal, "\(outcome)")
        for word in ["yaml_", "uncovertable", "Yams", "libyaml"] {
            #expect(!outcome.stderr.contains(word), "\(outcome.stderr)")
        }
    }

    @Test("a duplicate section is reported at its own line and column")
    func duplicateSection() throws {
        let outcome = try policyCheck("idle:\n  after: 1h\nlimits: {}\nidle:\n  after: 2h\n")
        #expect(outcome.isCleanRefusal, "\(outcome)")
        #expect(outcome.stderr.contains("line 4, column 1"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("duplicate key: each key may appear once in a mapping (got \"idle\")"), "\(outcome.stderr)")
    }

    @Test("surprising acceptances are refused", arguments: [
        ("limits:\n  maxReapsPerCycle: 0100\n", "limits.maxReapsPerCycle"),
        ("limits:\n  maxReapsPerCycle: 0x10\n", "limits.maxReapsPerCycle"),
        ("idle:\n  after: 1m1m\n", "idle.after"),
        ("idle:\n  after: 0.000001ms\n", "idle.after: must be from 1s to 365d"),
    ])
    func surprisingAcceptances(_ yaml: String, _ mention: String) throws {
        let outcome = try policyCheck(yaml)
        #expect(outcome.isCleanRefusal, "\(outcome)")
        #expect(outcome.stderr.contains(mention), "\(outcome.stderr)")
    }
}
