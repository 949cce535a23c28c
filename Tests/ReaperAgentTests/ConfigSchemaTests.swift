import BoundedYAML
import Foundation
import PolicyFile
import ReaperAgent
import Testing
import TestSupport

/// The config's one key table (`AgentConfiguration.schema`) against the
/// reader and README, and the grammar every file kind shares.
@Suite("config schema")
struct ConfigSchemaTests {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("README.md")

    func refusal(_ text: String) -> String? {
        do {
            _ = try AgentConfiguration.parse(text, file: "c.yaml")
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("an unknown key in the config, podSource and metrics gets a did-you-mean naming the section path", arguments: [
        ("reconcileIntervall: 5s\n", "c.yaml: reconcileIntervall: unknown setting; did you mean reconcileInterval?"),
        ("podSource:\n  kubeconfg: /x\n", "c.yaml: podSource.kubeconfg: unknown setting in podSource; did you mean podSource.kubeconfig?"),
        ("metrics:\n  listn: :9847\n", "c.yaml: metrics.listn: unknown setting in metrics; did you mean metrics.listen?"),
        // A key of a section written at the top level.
        ("nodeName: node-1\n", "c.yaml: nodeName: unknown setting; did you mean podSource.nodeName?"),
        ("banana: 1\n", "c.yaml: banana: unknown setting; known: kubeletRoot, manifests, policy,"),
    ])
    func unknownKeys(_ text: String, _ expected: String) {
        let message = refusal(text)
        #expect(message?.hasPrefix(expected) == true, "\(message ?? "accepted")")
    }

    @Test("every key of the table is read: a bad value is refused for what it is, never as unknown")
    func everyKeyIsRead() {
        for section in AgentConfiguration.schema.sections {
            for key in section.names {
                let text = section.path.isEmpty ? "\(key): [[x]]\n" : "\(section.path):\n  \(key): [[x]]\n"
                let message = refusal(text)
                let field = section.path.isEmpty ? key : "\(section.path).\(key)"
                #expect(message?.hasPrefix("c.yaml: \(field):") == true, "\(message ?? "accepted")")
                #expect(message?.contains("unknown") == false && message?.contains("not read") == false, "\(message ?? "")")
            }
        }
    }

    @Test("README's configuration and podSource tables are the tables the reader uses")
    func readmeReference() throws {
        let readme = try String(contentsOf: Self.readme, encoding: .utf8)
        #expect(readme.contains(AgentConfiguration.reference + "\n\n"), "README differs from AgentConfiguration.reference:\n\(AgentConfiguration.reference)")
        #expect(readme.contains(AgentConfiguration.podSourceReference + "\n\n"), "README differs from AgentConfiguration.podSourceReference:\n\(AgentConfiguration.podSourceReference)")
    }

    @Test("true and \"true\" mean the same in the policy, the config and a drop-in: true is true, \"true\" is refused alike")
    func quotedTrueEverywhere() throws {
        let directory = try TemporaryDirectory("grammar")
        defer { directory.remove() }
        let config = directory.appending("config.yaml")
        try FileManager.default.createDirectory(atPath: directory.appending("config.d"), withIntermediateDirectories: true)
        let policy = directory.appending("policy.yaml")

        func refusals(_ value: String) throws -> [String?] {
            try "dryRun: \(value)\n".write(toFile: config, atomically: true, encoding: .utf8)
            try "orphans:\n  reap: \(value)\n".write(toFile: policy, atomically: true, encoding: .utf8)
            var found: [String?] = []
            found.append(Result(catching: { try AgentConfiguration.load(path: config)  }).failureText(after: "dryRun: "))
            try "dryRun: false\n".write(toFile: config, atomically: true, encoding: .utf8)
            try "watchReads: \(value)\n".write(toFile: directory.appending("config.d/50-x.yaml"), atomically: true, encoding: .utf8)
            found.append(Result(catching: { try AgentConfiguration.load(path: config)  }).failureText(after: "watchReads: "))
            try FileManager.default.removeItem(atPath: directory.appending("config.d/50-x.yaml"))
            found.append(Result(catching: { try PolicyLoader.load(path: policy)  }).failureText(after: "orphans.reap: "))
            return found
        }

        #expect(try refusals("true") == [nil, nil, nil])
        #expect(try AgentConfiguration.parse("dryRun: true\n", file: "c.yaml").dryRun)
        #expect(try PolicyLoader.parse("orphans:\n  reap: false\n", file: "p.yaml").orphans.reap == false)
        for value in ["\"true\"", "'false'", "yes", "on", "maybe"] {
            let found = try refusals(value)
            #expect(found[0] != nil && Set(found).count == 1, "\(value): \(found)")
        }
    }

    @Test("a duration means the same in the policy, the config and a drop-in (ScalarGrammar.duration)")
    func durationsEverywhere() throws {
        let directory = try TemporaryDirectory("durations")
        defer { directory.remove() }
        let config = directory.appending("config.yaml")
        try FileManager.default.createDirectory(atPath: directory.appending("config.d"), withIntermediateDirectories: true)
        let policy = directory.appending("policy.yaml")

        func refusals(_ value: String) throws -> [String?] {
            try "reconcileInterval: \(value)\n".write(toFile: config, atomically: true, encoding: .utf8)
            try "orphans:\n  confirmAfter: \(value)\n".write(toFile: policy, atomically: true, encoding: .utf8)
            var found: [String?] = []
            found.append(Result(catching: { try AgentConfiguration.load(path: config) }).failureText(after: "reconcileInterval: "))
            try "reconcileInterval: 1m\n".write(toFile: config, atomically: true, encoding: .utf8)
            try "podSource:\n  maxBackoff: \(value)\n".write(toFile: directory.appending("config.d/50-x.yaml"), atomically: true, encoding: .utf8)
            found.append(Result(catching: { try AgentConfiguration.load(path: config) }).failureText(after: "podSource.maxBackoff: "))
            try FileManager.default.removeItem(atPath: directory.appending("config.d/50-x.yaml"))
            found.append(Result(catching: { try PolicyLoader.load(path: policy) }).failureText(after: "orphans.confirmAfter: "))
            return found.map { $0?.replacingOccurrences(of: #" \(got .*\)$"#, with: "", options: .regularExpression) }
        }

        for accepted in ["90s", "30m", "1h30m"] {
            #expect(try refusals(accepted) == [nil, nil, nil], "\(accepted)")
        }
        for (value, problem) in [
            ("-5m", "a duration cannot be negative"),
            ("90", "a number without a unit is ambiguous; write it with one, e.g. 90s or 90m (units: ms, s, m, h, d)"),
        ] {
            #expect(try refusals(value) == [problem, problem, problem], "\(value)")
        }
    }

    @Test("kubelet config: a near miss of an eviction signal is named under its section; signals not read pass")
    func kubeletEvictionSignals() throws {
        for section in ["evictionHard", "evictionSoft"] {
            #expect {
                _ = try KubeletEvictionThresholds.parse("\(section):\n  nodefs.availble: 10%\n", file: "/etc/k/config.yaml")
            } throws: {
                "\($0)" == "/etc/k/config.yaml: \(section).nodefs.availble: unknown eviction signal in \(section); did you mean \(section).nodefs.available?"
            }
        }
        let read = try KubeletEvictionThresholds.parse("evictionHard:\n  memory.available: 100Mi\n  nodefs.available: 10%\n  future.signal: 1%\n", file: "c.yaml")
        #expect(read.available == .percent(10))
    }
}

extension Result where Failure == any Error {
    /// The error's text after `marker` (the field), nil when it succeeded.
    func failureText(after marker: String) -> String? {
        guard case .failure(let error) = self else { return nil }
        let text = "\(error)"
        guard let range = text.range(of: marker) else { return text }
        return String(text[range.upperBound...])
    }
}
