import Foundation
import Logging
import ReaperAgent
import SystemdIntegration

/// Logging for the command line: journald when its socket exists (or when
/// asked), else readable stderr. Set up once per process.
enum CommandLogging {
    static func bootstrap(configuration: AgentConfiguration) -> Logger {
        let bootstrap = LoggingBootstrap(
            target: LogTarget(rawValue: configuration.logTarget) ?? .auto,
            logLevel: Logger.Level(rawValue: configuration.logLevel) ?? .info
        )
        LoggingSystem.bootstrap(bootstrap.factory(), metadataProvider: AgentMode.metadataProvider)
        return Logger(label: "volume-reaper")
    }

    /// One line on stderr for the operator, prefixed with the program name.
    static func printError(_ message: String) {
        FileHandle.standardError.write(Data("volume-reaper: \(message)\n".utf8))
    }
}
