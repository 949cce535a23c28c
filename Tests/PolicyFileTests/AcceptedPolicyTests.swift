import Foundation
import PolicyFile
import ReaperCore
import Testing

@Suite("Accepted policies")
struct AcceptedPolicyTests {
    func parse(_ yaml: String) throws -> Policy {
        try PolicyLoader.parse(yaml, file: "test.yaml")
    }

    @Test("a partial file fills the rest from the defaults")
    func partial() throws {
        let policy = try parse("""
            idle:
              after: 1h30m
            limits:
              maxReapsPerCycle: 7
            """)
        var expected = Policy()
        expected.idle.after = 5400
        expected.limits.maxReapsPerCycle = 7
        #expect(policy == expected)
    }

    @Test("an empty mapping is all defaults", arguments: ["{}", "{}\n", "---\n{}\n...\n", "idle: {}\n"])
    func emptyMapping(yaml: String) throws {
        #expect(try parse(yaml) == Policy.defaults)
    }

    @Test("a section with every key commented out is all defaults")
    func emptySection() throws {
        let policy = try parse("""
            idle:
              # after: 1h
            orphans:
              reap: false
            """)
        var expected = Policy()
        expected.orphans.reap = false
        #expect(policy == expected)
    }

    @Test("a trailing --- (an empty document) is no second document")
    func trailingSeparator() throws {
        #expect(try parse("limits:\n  maxReapsPerCycle: 3\n---\n").limits.maxReapsPerCycle == 3)
    }

    @Test("plugin names are accepted in both forms")
    func pluginForms() throws {
        let policy = try parse("""
            volumes:
              recursive: [kubernetes.io/empty-dir, kubernetes.io~secret, "kubernetes.io/configmap"]
              exclude: [kubernetes.io/nfs, kubernetes.io~csi, example.com~fancy-driver]
            """)
        #expect(policy.volumes.recursive == [.emptyDir, .secret, .configMap])
        #expect(policy.volumes.exclude == [PluginName("kubernetes.io~nfs"), .csi, PluginName("example.com/fancy-driver")])
    }

    @Test("the same plugin in both forms counts once")
    func pluginDuplicates() throws {
        let policy = try parse("volumes: {recursive: [kubernetes.io/empty-dir, kubernetes.io~empty-dir]}")
        #expect(policy.volumes.recursive == [.emptyDir])
    }

    @Test("every field set to a non-default value")
    func everyField() throws {
        let policy = try parse("""
            idle:
              after: 2d
              timestamps: [atime, ctime, mtime]
              requireObservation: True
              maxUnobservedGap: 0
            annotation:
              key: example.com/last-used
              idleAfter: 1500ms
              required: TRUE
            pods:
              phases: [Failed, Unknown]
              excludeOwnerKinds: [StatefulSet, MyController]
              excludeNamespaces: [ci, "2024"]
              protectAnnotation: keep-me
            orphans:
              reap: false
              manifestsMaxAge: 90s
              removePodDir: False
            volumes:
              recursive: []
              exclude: [kubernetes.io/configmap]
              unmount: [tmpfs, ramfs, ext4, xfs, overlay]
            limits:
              maxReapsPerCycle: 0
              maxOrphanFraction: 1
            """)
        #expect(policy.idle.after == 2 * 86400)
        #expect(policy.idle.timestamps == [.atime, .ctime, .mtime])
        #expect(policy.idle.requireObservation)
        #expect(policy.idle.maxUnobservedGap == 0)
        #expect(policy.annotation.key == "example.com/last-used")
        #expect(policy.annotation.idleAfter == 1.5)
        #expect(policy.annotation.required)
        #expect(policy.pods.phases == [.failed, .unknown])
        #expect(policy.pods.excludeOwnerKinds == ["StatefulSet", "MyController"])
        #expect(policy.pods.excludeNamespaces == ["ci", "2024"])
        #expect(policy.pods.protectAnnotation == "keep-me")
        #expect(policy.orphans.reap == false)
        #expect(policy.orphans.manifestsMaxAge == 90)
        #expect(policy.orphans.removePodDir == false)
        #expect(policy.volumes.recursive.isEmpty)
        #expect(policy.volumes.exclude == [.configMap])
        #expect(policy.volumes.unmount == ["tmpfs", "ramfs", "ext4", "xfs", "overlay"])
        #expect(policy.limits.maxReapsPerCycle == 0)
        #expect(policy.limits.maxOrphanFraction == 1)
    }

    @Test("fractions at both ends and in between", arguments: [("0", 0.0), ("0.0", 0.0), ("1.0", 1.0), (".25", 0.25), ("0.8", 0.8)])
    func fractions(text: String, value: Double) throws {
        #expect(try parse("limits: {maxOrphanFraction: \(text)}").limits.maxOrphanFraction == value)
    }

    @Test("durations in the forms people write", arguments: [("90s", 90.0), ("30m", 1800.0), ("1h30m", 5400.0), ("2d", 172_800.0), ("'45m'", 2700.0), ("1.5h", 5400.0)])
    func durations(text: String, seconds: Double) throws {
        #expect(try parse("idle: {after: \(text)}").idle.after == seconds)
    }

    @Test("anchors and aliases resolve")
    func aliases() throws {
        let policy = try parse("""
            idle: {after: &quiet 2h}
            annotation: {idleAfter: *quiet}
            """)
        #expect(policy.annotation.idleAfter == 7200)
    }
}
