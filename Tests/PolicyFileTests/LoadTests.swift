import Foundation
import PolicyFile
import ReaperCore
import Testing

@Suite("Loading and resolving policy files")
struct LoadTests {
    @Test("a file is read and its path named in errors")
    func loadNamesPath() throws {
        try withTemporaryDirectory { directory in
            let good = try write("idle:\n  after: 2h\n", to: "good.yaml", in: directory)
            #expect(try PolicyLoader.load(path: good).idle.after == 7200)

            let bad = try write("idle:\n  after: 2 hours\n", to: "bad.yaml", in: directory)
            let error = try #require(policyError { () throws(PolicyError) in try PolicyLoader.load(path: bad) })
            #expect(error.description == "\(bad): idle.after: not a duration; write e.g. 90s, 30m, 1h30m or 2d (got \"2 hours\")")
        }
    }

    @Test("a missing file is an error naming it")
    func missing() throws {
        try withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("absent.yaml").path
            let error = try #require(policyError { () throws(PolicyError) in try PolicyLoader.load(path: path) })
            #expect(error.code == .cannotRead)
            #expect(error.description == "\(path): cannot read: No such file or directory")
        }
    }

    @Test("a directory is not a policy")
    func directory() throws {
        try withTemporaryDirectory { directory in
            let error = try #require(policyError { () throws(PolicyError) in try PolicyLoader.load(path: directory.path) })
            #expect(error.code == .cannotRead)
            #expect(error.description.hasPrefix("\(directory.path): cannot read: "))
        }
    }

    @Test("binary junk is not a policy")
    func notText() throws {
        try withTemporaryDirectory { directory in
            let url = directory.appendingPathComponent("junk.yaml")
            try Data([0x69, 0x64, 0xFF, 0xFE, 0x00, 0x80]).write(to: url)
            let error = try #require(policyError { () throws(PolicyError) in try PolicyLoader.load(path: url.path) })
            #expect(error.code == .cannotRead)
            #expect(error.description.contains("not UTF-8"))
        }
    }

    @Test("an explicit path wins over the system path")
    func explicitFirst() throws {
        try withTemporaryDirectory { directory in
            let explicit = try write("limits: {maxReapsPerCycle: 1}\n", to: "explicit.yaml", in: directory)
            let system = try write("limits: {maxReapsPerCycle: 2}\n", to: "system.yaml", in: directory)
            let (policy, source) = try PolicyLoader.resolveDefault(explicitPath: explicit, systemPath: system)
            #expect(policy.limits.maxReapsPerCycle == 1)
            #expect(source == explicit)
        }
    }

    @Test("a missing explicit path is an error, never a fallback")
    func explicitMissing() throws {
        try withTemporaryDirectory { directory in
            let explicit = directory.appendingPathComponent("typo.yaml").path
            let system = try write("limits: {maxReapsPerCycle: 2}\n", to: "system.yaml", in: directory)
            let error = try #require(policyError { () throws(PolicyError) in
                try PolicyLoader.resolveDefault(explicitPath: explicit, systemPath: system).0
            })
            #expect(error.code == .cannotRead)
            #expect(error.file == explicit)
        }
    }

    @Test("the system path when there is no explicit one")
    func systemSecond() throws {
        try withTemporaryDirectory { directory in
            let system = try write("limits: {maxReapsPerCycle: 2}\n", to: "policy.yaml", in: directory)
            let (policy, source) = try PolicyLoader.resolveDefault(explicitPath: nil, systemPath: system)
            #expect(policy.limits.maxReapsPerCycle == 2)
            #expect(source == system)
        }
    }

    @Test("the built-in default when there is no file at all")
    func builtInLast() throws {
        try withTemporaryDirectory { directory in
            let system = directory.appendingPathComponent("etc/volume-reaper/policy.yaml").path
            let (policy, source) = try PolicyLoader.resolveDefault(explicitPath: nil, systemPath: system)
            #expect(policy == Policy.defaults)
            #expect(source == "built-in default")
        }
    }

    @Test("a broken system policy is an error, not a fallback to the default")
    func systemBroken() throws {
        try withTemporaryDirectory { directory in
            let system = try write("idle: {after: -1m}\n", to: "policy.yaml", in: directory)
            let error = try #require(policyError { () throws(PolicyError) in
                try PolicyLoader.resolveDefault(explicitPath: nil, systemPath: system).0
            })
            #expect(error.code == .negativeDuration)
            #expect(error.description.hasPrefix("\(system): idle.after: "))
        }
    }

    @Test("a dangling symlink at the system path is an error, not a fallback")
    func systemDangling() throws {
        try withTemporaryDirectory { directory in
            let system = directory.appendingPathComponent("policy.yaml").path
            try FileManager.default.createSymbolicLink(atPath: system, withDestinationPath: directory.appendingPathComponent("gone.yaml").path)
            let error = try #require(policyError { () throws(PolicyError) in
                try PolicyLoader.resolveDefault(explicitPath: nil, systemPath: system).0
            })
            #expect(error.code == .cannotRead)
            #expect(error.file == system)
        }
    }
}

@Suite("Policy descriptions")
struct PolicyDescriptionTests {
    @Test("the default policy in one line")
    func defaults() {
        let summary = PolicyDescription.summary(.defaults)
        #expect(!summary.contains("\n"))
        #expect(summary == "idle after 30m (mtime); "
            + "annotation volume.alpha.kubernetes.io/last-accessed-at older than 45m (when present); "
            + "phases Succeeded, Failed, not owned by DaemonSet, Node, not in kube-system, kept if annotated volume-reaper.io/keep; "
            + "orphans reaped when manifests < 10m old (pod dir removed too); "
            + "contents of empty-dir, configmap, secret, projected, downward-api, mounted volumes kept; "
            + "max 100 reaps/cycle, orphan fraction 0.5, 20 pods lost at once")
    }

    @Test("the shipped policies read as intended")
    func shipped() throws {
        let conservative = PolicyDescription.summary(try PolicyLoader.load(path: shippedPolicy("conservative.yaml").path))
        #expect(conservative.contains("idle after 6h (mtime, ctime; only when watched throughout, gaps up to 2m)"))
        #expect(conservative.contains("max 10 reaps/cycle, orphan fraction 0.1"))
        let ciRunner = PolicyDescription.summary(try PolicyLoader.load(path: shippedPolicy("ci-runner.yaml").path))
        #expect(ciRunner.contains("idle after 10m (mtime)"))
        #expect(ciRunner.contains("unmounting tmpfs"))
        #expect(ciRunner.contains("orphan fraction 0.8"))
    }

    @Test("switched-off parts say so")
    func switchedOff() throws {
        let policy = try PolicyLoader.parse("""
            idle: {after: 1d2h3m4s}
            annotation: {required: true}
            pods: {phases: [], excludeOwnerKinds: [], excludeNamespaces: []}
            orphans: {reap: false}
            volumes: {recursive: [], exclude: [kubernetes.io~nfs]}
            limits: {maxOrphanFraction: 1}
            """, file: "p.yaml")
        let summary = PolicyDescription.summary(policy)
        #expect(summary.contains("idle after 1d2h3m4s (mtime)"))
        #expect(summary.contains("(required)"))
        #expect(summary.contains("no pod phase (orphans only)"))
        #expect(summary.contains("orphans kept"))
        #expect(summary.contains("no contents deleted (empty dirs only), excluding kubernetes.io/nfs"))
        #expect(summary.contains("orphan fraction 1"))
    }
}
