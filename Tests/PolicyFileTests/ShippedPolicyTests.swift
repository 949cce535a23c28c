import Foundation
import PolicyFile
import ReaperCore
import Testing

@Suite("Shipped policies")
struct ShippedPolicyTests {
    static let files = ["default.yaml", "conservative.yaml", "ci-runner.yaml"]

    @Test("every shipped policy parses", arguments: files)
    func parses(name: String) throws {
        let path = shippedPolicy(name).path
        #expect(FileManager.default.fileExists(atPath: path), "missing \(path)")
        let policy = try PolicyLoader.load(path: path)
        #expect(policy.idle.after > 0)
    }

    @Test("every shipped policy starts with a comment block and sets every key", arguments: files)
    func complete(name: String) throws {
        let text = try String(contentsOf: shippedPolicy(name), encoding: .utf8)
        #expect(text.hasPrefix("# volume-reaper "))
        #expect(text.contains("For:"))
        #expect(text.contains("Trades:"))
        let schema: [(String, [String])] = [
            ("idle", ["after", "timestamps", "requireObservation", "maxUnobservedGap"]),
            ("annotation", ["key", "idleAfter", "required"]),
            ("pods", ["phases", "excludeOwnerKinds", "excludeNamespaces", "protectAnnotation"]),
            ("orphans", ["reap", "manifestsMaxAge", "confirmAfter", "removePodDir"]),
            ("volumes", ["recursive", "exclude", "unmount"]),
            ("limits", ["maxReapsPerCycle", "maxOrphanFraction"]),
        ]
        let lines = text.split(separator: "\n").map(String.init)
        for (section, keys) in schema {
            #expect(lines.contains("\(section):"), "\(name) has no \(section) section")
            for key in keys {
                let index = lines.firstIndex { $0.hasPrefix("  \(key):") }
                #expect(index != nil, "\(name) does not set \(section).\(key)")
                // Every key is explained by the comment line just above it.
                if let index { #expect(lines[index - 1].trimmingCharacters(in: .whitespaces).hasPrefix("#"), "\(section).\(key) uncommented") }
            }
        }
    }

    @Test("the built-in literal is policies/default.yaml, byte for byte")
    func builtInEqualsFile() throws {
        let onDisk = try String(contentsOf: shippedPolicy("default.yaml"), encoding: .utf8)
        #expect(PolicyLoader.builtInDefaultYAML == onDisk)
    }

    @Test("the default policy is Policy.defaults")
    func defaultEqualsDomainDefaults() throws {
        #expect(try PolicyLoader.parse(PolicyLoader.builtInDefaultYAML, file: "built-in default") == Policy.defaults)
        #expect(try PolicyLoader.load(path: shippedPolicy("default.yaml").path) == Policy.defaults)
    }

    @Test("the conservative policy is stricter than the default")
    func conservative() throws {
        let policy = try PolicyLoader.load(path: shippedPolicy("conservative.yaml").path)
        #expect(policy.idle.after == 6 * 3600)
        #expect(policy.idle.timestamps == [.mtime, .ctime])
        #expect(policy.idle.requireObservation)
        #expect(policy.annotation.required == false)
        #expect(policy.orphans.reap)
        #expect(policy.orphans.manifestsMaxAge == 5 * 60)
        #expect(policy.limits.maxReapsPerCycle == 10)
        #expect(policy.limits.maxOrphanFraction == 0.1)
        #expect(policy.volumes.exclude.isEmpty)
        #expect(policy.volumes.unmount.isEmpty)
        #expect(policy.pods.phases == [.succeeded, .failed])
    }

    @Test("the CI runner policy is aggressive and frees tmpfs")
    func ciRunner() throws {
        let policy = try PolicyLoader.load(path: shippedPolicy("ci-runner.yaml").path)
        #expect(policy.idle.after == 10 * 60)
        #expect(policy.annotation.idleAfter == 15 * 60)
        #expect(policy.pods.excludeNamespaces == ["kube-system"])
        #expect(policy.limits.maxReapsPerCycle == 500)
        #expect(policy.limits.maxOrphanFraction == 0.8)
        #expect(policy.volumes.unmount == ["tmpfs"])
        #expect(policy.volumes.recursive == Policy.defaults.volumes.recursive)
    }
}
