import ArgumentParser
import Foundation
import Logging
import PodSources
import PolicyFile
import Reaper
import ReaperAgent
import ReaperCore

/// The root command holds no options of its own, so a subcommand's flags are
/// always its own (`run --plan` is the daemon's dry run, never the root's).
/// `volume-reaper --plan` and `--once` go to the default one-shot command.
@main
struct VolumeReaperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume-reaper",
        abstract: "Reap idle Kubernetes pod volumes safely.",
        discussion: """
            volume-reaper --plan [--json]   judge every pod volume and print the plan; delete nothing
            volume-reaper --once [--json]   one real reconcile-and-reap cycle, then exit
            Exit status of --once: 0 the cycle ran; 3 the orphan circuit breaker tripped (no orphan
            was reaped); 4 another volume-reaper holds the reaper lock; 1 any other error.
            """,
        version: VolumeReaperVersion.current,
        subcommands: [
            OneShotCommand.self, RunCommand.self, IdleCommand.self, ForecastCommand.self, StatusCommand.self, ReconcileCommand.self,
            PolicyCommand.self, CheckCommand.self,
        ],
        defaultSubcommand: OneShotCommand.self
    )
}

/// `volume-reaper --plan` / `--once`.
struct OneShotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oneshot",
        abstract: "--plan: print the plan and delete nothing; --once: one real reconcile-and-reap cycle.",
        shouldDisplay: false
    )

    @Flag(name: .long, help: "Dry run: print what would be reaped and why; delete nothing.")
    var plan = false

    @Flag(name: .long, help: "One real reconcile-and-reap cycle, then exit.")
    var once = false

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var options: NodeOptions

    func validate() throws {
        if plan == once {
            throw ValidationError(plan ? "--plan and --once exclude each other" : "nothing to do: give --plan (dry run), --once or a subcommand; see --help")
        }
    }

    func run() async throws {
        let configuration = try options.resolved()
        // Observe mode in the config (the packaged one starts so): --once
        // would delete, which the file says not to. Refused, never guessed.
        if once && configuration.dryRun {
            throw CommandError("config \(configuration.file ?? "-"): dryRun: true (observe mode), so --once would delete against it; use --plan, or set dryRun: false")
        }
        AgentMode.set(dryRun: plan)
        let logger = CommandLogging.bootstrap(configuration: configuration)
        let (policy, _) = try options.loadPolicy(configuration)
        // One LIST (or poll, or read of the files) for the whole pass: a
        // terminated pod never runs again, and a pod created after the LIST
        // has a directory newer than it (manifests-older-than-pod).
        let pods = await PodSourceFactory.oneShot(configuration.podSourceSettings, logger: logger)
        let builder = PlanBuilder(configuration: configuration, policy: policy, pods: pods)
        if plan {
            let access = StoredAccess.readOnly(stateDirectory: configuration.stateDir, policy: policy, logger: logger)
            try printPlan(builder: builder, access: access, logger: logger)
        } else {
            let access: StoredAccess
            do {
                access = try StoredAccess.readWrite(stateDirectory: configuration.stateDir, policy: policy, logger: logger)
            } catch {
                throw CommandError("access store in \(configuration.stateDir): \(error)")
            }
            try reapOnce(builder: builder, access: access, logger: logger)
        }
    }

    private func printPlan(builder: PlanBuilder, access: StoredAccess, logger: Logger) throws {
        let snapshot: NodeSnapshot
        do {
            snapshot = try builder.build(accessFor: { try access.records(for: $0) }, observations: access, logger: logger)
        } catch {
            throw CommandError("\(error)")
        }
        reportManifestErrors(snapshot)
        if json {
            FileHandle.standardOutput.write(try snapshot.plan.jsonData())
            FileHandle.standardOutput.write(Data("\n".utf8))
        } else {
            print(PlanTable.render(snapshot.plan, now: snapshot.plan.generatedAt), terminator: "")
        }
    }

    private func reapOnce(builder: PlanBuilder, access: StoredAccess, logger: Logger) throws {
        let result: ReapCycle.Result
        do {
            result = try ReapCycle(builder: builder, dryRun: false).run(
                access: { try access.records(for: $0) }, observations: access, logger: logger
            )
        } catch let error as ReaperLockError where error.isHeld {
            CommandLogging.printError("\(error)")
            throw ExitCode(4)
        } catch {
            throw CommandError("\(error)")
        }
        access.recordReaps(result.report)
        reportManifestErrors(result.snapshot)
        if json {
            FileHandle.standardOutput.write(try ReapSummary(result).jsonData())
            FileHandle.standardOutput.write(Data("\n".utf8))
        } else {
            print(ReapSummary(result).table(), terminator: "")
        }
        if result.circuitBreakerTripped {
            for alert in result.snapshot.plan.alerts { CommandLogging.printError("ALERT: \(alert.message)") }
            throw ExitCode(3)
        }
    }

    private func reportManifestErrors(_ snapshot: NodeSnapshot) {
        for error in snapshot.manifests.errors {
            let what = snapshot.manifests.source == .files ? "manifest" : "pod source"
            CommandLogging.printError("\(what) \(error.file): \(error.message) (orphans are kept)")
        }
    }
}

/// A failure with a one-line message and a non-zero exit.
struct CommandError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}
