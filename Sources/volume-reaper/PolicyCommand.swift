import ArgumentParser
import Foundation
import PolicyFile

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Work with policy files.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a policy file: exit 0 and a summary, or one line naming the field at fault."
        )

        @Argument(help: "The policy file.")
        var file: String

        func run() throws {
            do {
                let policy = try PolicyLoader.load(path: file)
                print("\(file): ok")
                print(PolicyDescription.summary(policy))
            } catch {
                throw CommandError("\(error)")
            }
        }
    }
}
