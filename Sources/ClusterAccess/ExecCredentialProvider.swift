import Foundation
import Logging
import ReaperCore
import Synchronization
import SystemCalls

/// What an exec plugin answered: a token, a client certificate and key, or both.
struct ExecCredential: Sendable, Hashable {
    var token: Secret?
    var clientCertificate: [UInt8]?
    var clientKey: [UInt8]?
    /// nil: valid until `invalidate()`.
    var expiration: Date?
}

/// Runs an exec credential plugin and keeps its answer until it expires
/// (less `expiryMargin`), as client-go does. One run at a time: callers that
/// arrive while the plugin runs get its answer instead of starting another.
final class ExecCredentialProvider: Sendable {
    /// A credential this close to its expiry is fetched anew, so a request
    /// does not leave with a token that dies on the way.
    static let expiryMargin: TimeInterval = 10
    /// ExecCredential JSON is small; more than this is not one.
    static let stdoutLimit = 1 << 20

    let configuration: ExecPluginConfiguration
    /// The cluster's server and CA, for `provideClusterInfo`.
    let clusterInfo: [String: any Sendable]?
    let environment: [String: String]
    let timeout: Duration
    let logger: Logger
    private let cached = Mutex<ExecCredential?>(nil)
    /// Runs happen here, off Swift's cooperative pool, one at a time.
    private let work = BlockingWork(label: "volume-reaper.exec-credential")

    init(
        _ configuration: ExecPluginConfiguration, clusterInfo: [String: any Sendable]?,
        environment: [String: String], timeout: Duration, logger: Logger
    ) {
        self.configuration = configuration
        self.clusterInfo = clusterInfo
        self.environment = environment
        self.timeout = timeout
        self.logger = logger
    }

    /// The cached credential if still good, else a fresh one from the plugin.
    func credential() async throws(ClusterAccessError) -> ExecCredential {
        if let fresh = freshCached() { return fresh }
        let result = await work.run { () -> Result<ExecCredential, ClusterAccessError> in
            Result { () throws(ClusterAccessError) -> ExecCredential in
                if let fresh = self.freshCached() { return fresh }
                let credential = try self.runPlugin()
                self.cached.withLock { $0 = credential }
                return credential
            }
        }
        return try result.get()
    }

    /// Forgets the cached credential (after a 401).
    func invalidate() {
        cached.withLock { $0 = nil }
    }

    private func freshCached() -> ExecCredential? {
        cached.withLock { credential in
            guard let credential else { return nil }
            if let expiration = credential.expiration, expiration.timeIntervalSinceNow <= Self.expiryMargin { return nil }
            return credential
        }
    }

    // MARK: Running

    private func runPlugin() throws(ClusterAccessError) -> ExecCredential {
        let executable = try resolveCommand()
        var childEnvironment = environment
        for variable in configuration.environment { childEnvironment[variable.name] = variable.value }
        childEnvironment["KUBERNETES_EXEC_INFO"] = execInfo()
        let started = ContinuousClock.now
        var outcome: PluginProcess.Outcome?
        do {
            // ETXTBSY: the plugin is being replaced (or another thread's
            // child has not yet exec'd past a descriptor writing it): retry briefly.
            for attempt in 1...5 {
                do {
                    outcome = try PluginProcess.run(
                        executable: executable, arguments: configuration.arguments,
                        environment: childEnvironment.map { "\($0.key)=\($0.value)" }.sorted(),
                        timeout: timeout, stdoutLimit: Self.stdoutLimit
                    )
                    break
                } catch .spawn(let code) where code == .textFileBusy && attempt < 5 {
                    Syscall.sleep(milliseconds: 20)
                }
            }
        } catch {
            switch error {
            case .spawn(let code) where code == .noSuchFileOrDirectory:
                throw notFound(executable)
            case .spawn(let code):
                throw configuration.error("command", "cannot run \(executable): \(code)")
            case .system(let error):
                throw configuration.error("command", "cannot run \(executable): \(error)")
            }
        }
        guard let outcome else { throw configuration.error("command", "cannot run \(executable): the file stayed busy") }
        logger.debug("ran exec credential plugin", metadata: [
            "command": "\(executable)", "exitStatus": "\(outcome.exitStatus.map(String.init) ?? "none")",
            "duration": "\(ContinuousClock.now - started)",
        ])
        let stderr = UserText.excerpt(String(decoding: outcome.stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), limit: 300)
        let stderrPart = stderr.isEmpty ? "" : ": \(stderr)"
        if outcome.timedOut {
            throw configuration.error("command", "the plugin \(executable) did not finish within \(timeout.formattedSeconds); killed it\(stderrPart)")
        }
        if outcome.stdoutTooLarge {
            throw configuration.error("command", "the plugin \(executable) printed more than \(Self.stdoutLimit >> 20) MiB; killed it")
        }
        if let signal = outcome.signal {
            throw configuration.error("command", "the plugin \(executable) was killed by signal \(signal)\(stderrPart)")
        }
        if let status = outcome.exitStatus, status != 0 {
            throw configuration.error("command", "the plugin \(executable) exited with status \(status)\(stderrPart)")
        }
        return try ExecCredentialParser(configuration: configuration, executable: executable).parse(outcome.stdout)
    }

    /// The command as a path: as written when it has a slash, else the first
    /// executable of that name in `PATH`.
    private func resolveCommand() throws(ClusterAccessError) -> String {
        let command = configuration.command
        if command.contains("/") { return command }
        let path = environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(command)"
            if Syscall.isExecutable(candidate) { return candidate }
        }
        throw notFound(command)
    }

    private func notFound(_ command: String) -> ClusterAccessError {
        var message = "the plugin \(command) was not found"
        if !command.contains("/") { message += " in PATH" }
        if let hint = configuration.installHint { message += "; \(hint)" }
        return configuration.error("command", message)
    }

    /// `KUBERNETES_EXEC_INFO`: the ExecCredential spec (never interactive:
    /// an agent has no terminal), with the cluster when asked for.
    private func execInfo() -> String {
        var spec: [String: Any] = ["interactive": false]
        if configuration.providesClusterInfo, let clusterInfo { spec["cluster"] = clusterInfo }
        let object: [String: Any] = ["apiVersion": configuration.apiVersion, "kind": "ExecCredential", "spec": spec]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension Duration {
    /// `30 s`, `0.5 s`.
    var formattedSeconds: String {
        let (seconds, attoseconds) = components
        if attoseconds == 0 { return "\(seconds) s" }
        return "\(Double(seconds) + Double(attoseconds) / 1e18) s"
    }
}
