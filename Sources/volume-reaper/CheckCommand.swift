import ArgumentParser
import Foundation
import Logging
import ReaperAgent

/// `volume-reaper check`: the first command on a new node. One line per item,
/// `ok`, `warn` or `fail`, with the fix; exit 1 on any fail.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check this node for the agent: kubelet root, pod source, inotify, journald, state, socket, policy, unmount, mode, plan.",
        discussion: "Each line is ok, warn or fail, the item, what was found and (unless ok) the fix. Exit 0, or 1 on any fail. Deletes nothing."
    )

    @OptionGroup var options: NodeOptions

    func run() async throws {
        let configuration: AgentConfiguration
        do {
            configuration = try options.resolved()
        } catch {
            print(CheckLine(.fail, "config", "\(error)", fix: "correct the key named in \(options.config ?? "the config file")"))
            throw ExitCode(1)
        }
        // The lines say what matters; log lines only when asked for.
        var logging = configuration
        if options.logLevel == nil { logging.logLevel = "critical" }
        if options.logTarget == nil { logging.logTarget = "stderr" }
        let logger = CommandLogging.bootstrap(configuration: logging)
        if let config = options.config {
            let dropIns = configuration.dropIns.isEmpty ? "" : " with drop-ins " + configuration.dropIns.joined(separator: ", ")
            print(CheckLine(.ok, "config", "\(config)\(dropIns): valid"))
        }
        let check = NodeCheck(configuration: configuration, configSource: options.config ?? "the flags")
        let lines = await check.run(logger: logger)
        for line in lines { print(line) }
        if lines.contains(where: { $0.status == .fail }) { throw ExitCode(1) }
    }
}
