import ArgumentParser
import Foundation
import Logging
import ReaperAgent
import ReaperCore
import SystemdIntegration

/// `volume-reaper run [--plan]`: the daemon.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent: watch, reconcile every interval, reap idle volumes, answer on the socket.",
        discussion: "SIGTERM or SIGINT stop it (the access store is flushed); SIGHUP reloads the policy and manifests."
    )

    @Flag(name: .long, help: "Dry run: never delete; log what would be reaped (as the config's dryRun: true, but not undone by a reload).")
    var plan = false

    @Option(help: "Group owning the API socket (mode 0660).")
    var socketGroup: String?

    @Option(help: "Seconds between reconcile cycles (default 60, or the config file's reconcileInterval).")
    var reconcileInterval: Double?

    @Option(help: "Cap on inotify watches; volumes beyond it are polled for mtimes.")
    var maxWatches: Int?

    @OptionGroup var options: NodeOptions

    func validate() throws {
        if let reconcileInterval, let problem = DurationText.rangeProblem(reconcileInterval, DurationText.intervalRange) {
            throw ValidationError("--reconcile-interval \(problem) (got \(reconcileInterval) seconds)")
        }
        if let maxWatches, maxWatches <= 0 {
            throw ValidationError("--max-watches must be positive (got \(maxWatches))")
        }
    }

    func run() async throws {
        // Socket activation: take systemd's descriptors before anything else
        // (it unsets LISTEN_* in the environment).
        let inherited: Int32?
        do {
            inherited = try ListenFDs.takeFromProcess().unixListener()
        } catch {
            throw CommandError("socket activation: \(error)")
        }
        var configuration = try options.resolved()
        if let socketGroup { configuration.socketGroup = socketGroup }
        if let reconcileInterval { configuration.reconcileInterval = reconcileInterval }
        if let maxWatches { configuration.maxWatches = maxWatches }
        AgentMode.set(dryRun: plan || configuration.dryRun)
        let logger = CommandLogging.bootstrap(configuration: configuration)
        let (policy, source) = try options.loadPolicy(configuration)
        do {
            try await Daemon.run(
                configuration: configuration, policy: policy, policySource: source, dryRun: plan,
                inheritedListenerFD: inherited, logger: logger
            )
        } catch {
            throw CommandError("\(error)")
        }
    }
}
