import Foundation
import PolicyFile
import ReaperCore
import Testing

/// One policy that must be refused, and what the message must say.
struct RefusedCase: Sendable, CustomTestStringConvertible {
    var name: String
    var yaml: String
    var code: PolicyError.Code
    /// The field path the message names (nil for whole-file problems).
    var field: String?
    /// The bad value, as the message quotes it.
    var value: String?
    /// More text the message must hold (a hint, a line number).
    var mentions: [String] = []

    var testDescription: String { name }
}

extension RefusedCase {
    static let file = "/etc/volume-reaper/bad-policy.yaml"

    static let all: [RefusedCase] = [
        // Unknown keys, with near misses named.
        RefusedCase(name: "unknown section", yaml: "idel:\n  after: 30m\n", code: .unknownKey, field: "idel", value: "idel", mentions: ["did you mean idle?"]),
        RefusedCase(name: "unknown section, far off", yaml: "banana: 1\n", code: .unknownKey, field: "banana", value: "banana", mentions: ["known: idle, annotation"]),
        RefusedCase(name: "typo in a section", yaml: "idle:\n  afer: 30m\n", code: .unknownKey, field: "idle.afer", value: "afer", mentions: ["did you mean idle.after?"]),
        // Issue 21: the schema lacked pressure.checkInterval, which the reader accepts.
        RefusedCase(name: "typo in pressure.checkInterval", yaml: "pressure:\n  chekInterval: 10s\n", code: .unknownKey, field: "pressure.chekInterval", value: "chekInterval", mentions: ["did you mean pressure.checkInterval?"]),
        RefusedCase(name: "typo in limits.maxPodsLost", yaml: "limits:\n  maxPodLost: 5\n", code: .unknownKey, field: "limits.maxPodLost", value: "maxPodLost", mentions: ["did you mean limits.maxPodsLost?"]),
        RefusedCase(name: "wrong case", yaml: "annotation:\n  idleafter: 30m\n", code: .unknownKey, field: "annotation.idleafter", value: "idleafter", mentions: ["did you mean annotation.idleAfter?"]),
        RefusedCase(name: "snake case", yaml: "limits:\n  max_reaps_per_cycle: 5\n", code: .unknownKey, field: "limits.max_reaps_per_cycle", value: "max_reaps_per_cycle", mentions: ["did you mean limits.maxReapsPerCycle?"]),
        RefusedCase(name: "key of another section", yaml: "idle:\n  idleAfter: 30m\n", code: .unknownKey, field: "idle.idleAfter", value: "idleAfter", mentions: ["did you mean annotation.idleAfter?"]),
        RefusedCase(name: "section key at the top", yaml: "after: 30m\n", code: .unknownKey, field: "after", value: "after", mentions: ["did you mean idle.after?"]),
        RefusedCase(name: "unknown key, no near miss", yaml: "pods:\n  banana: 1\n", code: .unknownKey, field: "pods.banana", value: "banana", mentions: ["known: phases, excludeOwnerKinds"]),

        // Wrong types.
        RefusedCase(name: "list for a duration", yaml: "idle:\n  after: [30m]\n", code: .wrongType, field: "idle.after", value: "[30m]", mentions: ["not a list"]),
        RefusedCase(name: "mapping for a text", yaml: "annotation:\n  key: {a: b}\n", code: .wrongType, field: "annotation.key", value: "{a: b}", mentions: ["not a mapping"]),
        RefusedCase(name: "scalar for a list", yaml: "idle:\n  timestamps: mtime\n", code: .wrongType, field: "idle.timestamps", value: "mtime", mentions: ["write [mtime]"]),
        RefusedCase(name: "list in a list", yaml: "pods:\n  excludeNamespaces: [[ci]]\n", code: .wrongType, field: "pods.excludeNamespaces[0]", value: "[ci]"),
        RefusedCase(name: "section is a scalar", yaml: "idle: 30m\n", code: .notAMapping, field: "idle", value: "30m", mentions: ["expected a mapping of after, timestamps"]),
        RefusedCase(name: "section is a list", yaml: "limits: [1, 2]\n", code: .notAMapping, field: "limits", value: "[1, 2]"),
        RefusedCase(name: "document is a list", yaml: "- idle\n- limits\n", code: .notAMapping, field: "(top level)", value: "[idle, limits]"),
        RefusedCase(name: "document is a scalar", yaml: "hello\n", code: .notAMapping, field: "(top level)", value: "hello"),
        RefusedCase(name: "a key with no value", yaml: "idle:\n  after:\n", code: .missingValue, field: "idle.after", value: "", mentions: ["no value"]),
        RefusedCase(name: "a list with no value", yaml: "volumes:\n  exclude: ~\n", code: .missingValue, field: "volumes.exclude", value: "~", mentions: ["write []"]),

        // Durations.
        RefusedCase(name: "not a duration", yaml: "idle:\n  after: soon\n", code: .invalidDuration, field: "idle.after", value: "soon", mentions: ["90s, 30m, 1h30m"]),
        RefusedCase(name: "a bare number", yaml: "idle:\n  after: 30\n", code: .invalidDuration, field: "idle.after", value: "30", mentions: ["30s or 30m"]),
        RefusedCase(name: "a quoted bare number", yaml: "annotation:\n  idleAfter: \"45\"\n", code: .invalidDuration, field: "annotation.idleAfter", value: "45", mentions: ["45s or 45m"]),
        RefusedCase(name: "an unknown unit", yaml: "orphans:\n  manifestsMaxAge: 10 minutes\n", code: .invalidDuration, field: "orphans.manifestsMaxAge", value: "10 minutes"),
        RefusedCase(name: "a negative duration", yaml: "orphans:\n  manifestsMaxAge: -5m\n", code: .negativeDuration, field: "orphans.manifestsMaxAge", value: "-5m", mentions: ["negative"]),
        RefusedCase(name: "a negative gap", yaml: "idle: {maxUnobservedGap: -1s}\n", code: .negativeDuration, field: "idle.maxUnobservedGap", value: "-1s"),
        RefusedCase(name: "a negative bare number", yaml: "annotation: {idleAfter: -30}\n", code: .negativeDuration, field: "annotation.idleAfter", value: "-30"),
        RefusedCase(name: "idle.after past a year", yaml: "idle:\n  after: 106751991167301d\n", code: .durationOutOfRange, field: "idle.after", value: "106751991167301d", mentions: ["must be from 1s to 365d"]),
        RefusedCase(name: "idle.after under a second", yaml: "idle:\n  after: 0.000001ms\n", code: .durationOutOfRange, field: "idle.after", value: "0.000001ms", mentions: ["must be from 1s to 365d"]),
        RefusedCase(name: "a unit repeated", yaml: "idle:\n  after: 1m1m\n", code: .invalidDuration, field: "idle.after", value: "1m1m"),
        RefusedCase(name: "units out of order", yaml: "annotation:\n  idleAfter: 30s1m\n", code: .invalidDuration, field: "annotation.idleAfter", value: "30s1m"),
        RefusedCase(name: "maxUnobservedGap past a year", yaml: "idle:\n  maxUnobservedGap: 400d\n", code: .durationOutOfRange, field: "idle.maxUnobservedGap", value: "400d"),
        RefusedCase(name: "YAML 1.1 octal count", yaml: "limits:\n  maxReapsPerCycle: 0100\n", code: .notAnInteger, field: "limits.maxReapsPerCycle", value: "0100", mentions: ["no leading zeros"]),
        RefusedCase(name: "hexadecimal count", yaml: "limits:\n  maxReapsPerCycle: 0x10\n", code: .notAnInteger, field: "limits.maxReapsPerCycle", value: "0x10"),
        RefusedCase(name: "count with underscores", yaml: "limits:\n  maxReapsPerCycle: 1_000\n", code: .notAnInteger, field: "limits.maxReapsPerCycle", value: "1_000"),
        RefusedCase(name: "octal fraction", yaml: "limits:\n  maxOrphanFraction: 01\n", code: .fractionOutOfRange, field: "limits.maxOrphanFraction", value: "01"),
        RefusedCase(name: "zero idle.after", yaml: "idle:\n  after: 0s\n", code: .zeroDuration, field: "idle.after", value: "0s", mentions: ["longer than 0"]),
        RefusedCase(name: "zero idle.after, bare", yaml: "idle:\n  after: 0\n", code: .zeroDuration, field: "idle.after", value: "0"),

        // Booleans.
        RefusedCase(name: "yes for true", yaml: "orphans:\n  reap: yes\n", code: .invalidBoolean, field: "orphans.reap", value: "yes", mentions: ["true or false"]),
        RefusedCase(name: "off for false", yaml: "orphans: {removePodDir: off}\n", code: .invalidBoolean, field: "orphans.removePodDir", value: "off"),
        RefusedCase(name: "quoted true", yaml: "annotation:\n  required: \"true\"\n", code: .invalidBoolean, field: "annotation.required", value: "true", mentions: ["without quotes"]),
        RefusedCase(name: "1 for true", yaml: "idle: {requireObservation: 1}\n", code: .invalidBoolean, field: "idle.requireObservation", value: "1"),

        // Timestamp kinds.
        RefusedCase(name: "unknown timestamp", yaml: "idle:\n  timestamps: [mtime, birthtime]\n", code: .unknownTimestampKind, field: "idle.timestamps[1]", value: "birthtime", mentions: ["mtime, ctime, atime"]),
        RefusedCase(name: "timestamp in capitals", yaml: "idle: {timestamps: [MTIME]}\n", code: .unknownTimestampKind, field: "idle.timestamps[0]", value: "MTIME", mentions: ["did you mean mtime?"]),
        RefusedCase(name: "no timestamps", yaml: "idle: {timestamps: []}\n", code: .emptyList, field: "idle.timestamps", value: "[]"),

        // Phases.
        RefusedCase(name: "unknown phase", yaml: "pods:\n  phases: [Succeeded, Done]\n", code: .unknownPhase, field: "pods.phases[1]", value: "Done", mentions: ["Pending, Running, Succeeded, Failed, Unknown"]),
        RefusedCase(name: "phase in lowercase", yaml: "pods: {phases: [succeeded]}\n", code: .unknownPhase, field: "pods.phases[0]", value: "succeeded", mentions: ["did you mean Succeeded?"]),
        RefusedCase(name: "Running", yaml: "pods: {phases: [Succeeded, Running]}\n", code: .livePhase, field: "pods.phases[1]", value: "Running", mentions: ["live pods"]),
        RefusedCase(name: "Pending", yaml: "pods: {phases: [Pending]}\n", code: .livePhase, field: "pods.phases[0]", value: "Pending"),
        RefusedCase(name: "empty phase", yaml: "pods: {phases: [\"\"]}\n", code: .emptyValue, field: "pods.phases[0]", value: ""),

        // Plugins.
        RefusedCase(name: "nfs recursive", yaml: "volumes:\n  recursive: [kubernetes.io/empty-dir, kubernetes.io/nfs]\n", code: .pluginNotLocal, field: "volumes.recursive[1]", value: "kubernetes.io/nfs", mentions: ["local kinds"]),
        RefusedCase(name: "csi recursive", yaml: "volumes: {recursive: [kubernetes.io~csi]}\n", code: .pluginNotLocal, field: "volumes.recursive[0]", value: "kubernetes.io~csi"),
        RefusedCase(name: "flex recursive", yaml: "volumes: {recursive: [example.com~lvm]}\n", code: .pluginNotLocal, field: "volumes.recursive[0]", value: "example.com~lvm"),
        RefusedCase(name: "plugin without vendor", yaml: "volumes: {exclude: [empty-dir]}\n", code: .invalidPluginName, field: "volumes.exclude[0]", value: "empty-dir", mentions: ["did you mean \"kubernetes.io/empty-dir\"?"]),
        RefusedCase(name: "plugin with spaces", yaml: "volumes: {exclude: [\"kubernetes.io/empty dir\"]}\n", code: .invalidPluginName, field: "volumes.exclude[0]", value: "kubernetes.io/empty dir"),
        RefusedCase(name: "plugin with two slashes", yaml: "volumes: {recursive: [kubernetes.io/empty-dir/x]}\n", code: .invalidPluginName, field: "volumes.recursive[0]", value: "kubernetes.io/empty-dir/x"),

        // File system types to unmount.
        RefusedCase(name: "unmount nfs4", yaml: "volumes:\n  unmount: [tmpfs, nfs4]\n", code: .networkFilesystem, field: "volumes.unmount[1]", value: "nfs4", mentions: ["kubelet"]),
        RefusedCase(name: "unmount nfs", yaml: "volumes: {unmount: [nfs]}\n", code: .networkFilesystem, field: "volumes.unmount[0]", value: "nfs"),
        RefusedCase(name: "unmount cifs", yaml: "volumes: {unmount: [cifs]}\n", code: .networkFilesystem, field: "volumes.unmount[0]", value: "cifs"),
        RefusedCase(name: "unmount smb3", yaml: "volumes: {unmount: [smb3]}\n", code: .networkFilesystem, field: "volumes.unmount[0]", value: "smb3"),
        RefusedCase(name: "unmount ceph", yaml: "volumes: {unmount: [ceph]}\n", code: .networkFilesystem, field: "volumes.unmount[0]", value: "ceph"),
        RefusedCase(name: "unmount glusterfs", yaml: "volumes: {unmount: [glusterfs]}\n", code: .networkFilesystem, field: "volumes.unmount[0]", value: "glusterfs"),
        RefusedCase(name: "unmount rbd", yaml: "volumes: {unmount: [rbd]}\n", code: .networkFilesystem, field: "volumes.unmount[0]", value: "rbd"),
        RefusedCase(name: "unmount fuse.sshfs", yaml: "volumes: {unmount: [fuse.sshfs]}\n", code: .networkFilesystem, field: "volumes.unmount[0]", value: "fuse.sshfs"),
        RefusedCase(name: "unmount fuse", yaml: "volumes: {unmount: [fuse]}\n", code: .networkFilesystem, field: "volumes.unmount[0]", value: "fuse"),
        RefusedCase(name: "unmount in capitals", yaml: "volumes: {unmount: [TMPFS]}\n", code: .invalidFilesystemType, field: "volumes.unmount[0]", value: "TMPFS", mentions: ["did you mean \"tmpfs\"?"]),
        RefusedCase(name: "unmount a path", yaml: "volumes: {unmount: [/dev/shm]}\n", code: .invalidFilesystemType, field: "volumes.unmount[0]", value: "/dev/shm"),

        // Limits.
        RefusedCase(name: "negative reaps", yaml: "limits:\n  maxReapsPerCycle: -1\n", code: .negativeNumber, field: "limits.maxReapsPerCycle", value: "-1", mentions: ["0 or more"]),
        RefusedCase(name: "fractional reaps", yaml: "limits: {maxReapsPerCycle: 2.5}\n", code: .notAnInteger, field: "limits.maxReapsPerCycle", value: "2.5", mentions: ["whole number"]),
        RefusedCase(name: "reaps as a word", yaml: "limits: {maxReapsPerCycle: ten}\n", code: .notAnInteger, field: "limits.maxReapsPerCycle", value: "ten"),
        RefusedCase(name: "reaps quoted", yaml: "limits: {maxReapsPerCycle: \"10\"}\n", code: .notAnInteger, field: "limits.maxReapsPerCycle", value: "10", mentions: ["without quotes"]),
        RefusedCase(name: "fraction above 1", yaml: "limits:\n  maxOrphanFraction: 1.5\n", code: .fractionOutOfRange, field: "limits.maxOrphanFraction", value: "1.5", mentions: ["0 to 1"]),
        RefusedCase(name: "fraction below 0", yaml: "limits: {maxOrphanFraction: -0.1}\n", code: .fractionOutOfRange, field: "limits.maxOrphanFraction", value: "-0.1"),
        RefusedCase(name: "pressure amount neither percentage nor size", yaml: "pressure:\n  available: 150%\n", code: .invalidAmount, field: "pressure.available", value: "150%", mentions: ["0% to 100%"]),
        RefusedCase(name: "fraction as a percentage", yaml: "limits: {maxOrphanFraction: 50%}\n", code: .fractionOutOfRange, field: "limits.maxOrphanFraction", value: "50%", mentions: ["is 0.5"]),
        RefusedCase(name: "fraction NaN", yaml: "limits: {maxOrphanFraction: .nan}\n", code: .fractionOutOfRange, field: "limits.maxOrphanFraction", value: ".nan"),
        RefusedCase(name: "fraction as a word", yaml: "limits: {maxOrphanFraction: half}\n", code: .wrongType, field: "limits.maxOrphanFraction", value: "half"),

        // Names.
        RefusedCase(name: "empty annotation key", yaml: "annotation:\n  key: \"\"\n", code: .emptyValue, field: "annotation.key", value: "", mentions: ["cannot be empty"]),
        RefusedCase(name: "empty protect annotation", yaml: "pods: {protectAnnotation: ''}\n", code: .emptyValue, field: "pods.protectAnnotation", value: ""),
        RefusedCase(name: "annotation key with a space", yaml: "annotation: {key: last accessed}\n", code: .invalidAnnotationKey, field: "annotation.key", value: "last accessed"),
        RefusedCase(name: "annotation key with a bad prefix", yaml: "pods: {protectAnnotation: Example.COM/keep}\n", code: .invalidAnnotationKey, field: "pods.protectAnnotation", value: "Example.COM/keep", mentions: ["DNS subdomain"]),
        RefusedCase(name: "namespace in capitals", yaml: "pods: {excludeNamespaces: [Kube-System]}\n", code: .invalidNamespace, field: "pods.excludeNamespaces[0]", value: "Kube-System"),
        RefusedCase(name: "empty namespace", yaml: "pods: {excludeNamespaces: [\"\"]}\n", code: .emptyValue, field: "pods.excludeNamespaces[0]", value: ""),
        RefusedCase(name: "kind in lowercase", yaml: "pods: {excludeOwnerKinds: [daemonset]}\n", code: .invalidKind, field: "pods.excludeOwnerKinds[0]", value: "daemonset", mentions: ["did you mean \"DaemonSet\"?"]),
        RefusedCase(name: "kind with a slash", yaml: "pods: {excludeOwnerKinds: [apps/DaemonSet]}\n", code: .invalidKind, field: "pods.excludeOwnerKinds[0]", value: "apps/DaemonSet"),

        // The whole file.
        RefusedCase(name: "empty file", yaml: "", code: .empty, mentions: ["empty"]),
        RefusedCase(name: "only comments", yaml: "# nothing here\n", code: .empty),
        RefusedCase(name: "two documents", yaml: "idle: {after: 1h}\n---\nlimits: {maxReapsPerCycle: 1}\n", code: .multipleDocuments, mentions: ["line 3", "more than one YAML document"]),
        RefusedCase(name: "unclosed flow list", yaml: "idle:\n  after: 30m\n  timestamps: [mtime\n", code: .syntax, mentions: ["line 4", "not valid YAML"]),
        RefusedCase(name: "tab indentation", yaml: "idle:\n\tafter: 30m\n", code: .syntax, mentions: ["line 2", "column 1"]),
        RefusedCase(name: "bad indentation", yaml: "idle:\n  after: 30m\n timestamps: [mtime]\n", code: .syntax, mentions: ["line 3"]),
        RefusedCase(name: "duplicate key", yaml: "idle:\n  after: 1h\n  after: 2h\n", code: .duplicateKey, value: "after", mentions: ["line 3, column 3", "duplicate key"]),
        RefusedCase(name: "duplicate section", yaml: "idle: {}\nlimits: {}\nidle: {}\n", code: .duplicateKey, value: "idle", mentions: ["line 3, column 1"]),
        RefusedCase(name: "duplicate key, quoted", yaml: "limits:\n  maxReapsPerCycle: 1\n  'maxReapsPerCycle': 2\n", code: .duplicateKey, value: "maxReapsPerCycle", mentions: ["line 3, column 3"]),
        RefusedCase(name: "alias as a key", yaml: "idle:\n  after: &k 1h\n  *k : 2h\n", code: .unsafeYAML, mentions: ["line 3, column 3", "alias (*k) used as a mapping key"]),
        RefusedCase(name: "aliases past the node budget", yaml: "idle:\n  after: {a: &a [x, x, x, x, x, x, x, x, x, x], b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c], e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}\n", code: .unsafeYAML, mentions: ["more than 100000 nodes"]),
        RefusedCase(name: "undefined alias", yaml: "idle: {after: *nothing}\n", code: .syntax, mentions: ["line 1", "undefined alias"]),
    ]
}

@Suite("Refused policies")
struct RefusedPolicyTests {
    @Test("each refusal is one line naming the file, the field and the value", arguments: RefusedCase.all)
    func refused(_ refused: RefusedCase) throws {
        let error = try #require(policyError { () throws(PolicyError) in try PolicyLoader.parse(refused.yaml, file: RefusedCase.file) })
        let message = error.description
        #expect(error.code == refused.code, "\(message)")
        #expect(error.file == RefusedCase.file)
        #expect(message.hasPrefix(RefusedCase.file + ": "), "\(message)")
        #expect(!message.contains("\n"), "\(message)")
        if let field = refused.field {
            #expect(error.field == field, "\(message)")
            #expect(message.hasPrefix("\(RefusedCase.file): \(field): "), "\(message)")
        } else {
            #expect(error.field == nil, "\(message)")
        }
        if let value = refused.value {
            #expect(error.value == value, "\(message)")
            #expect(message.hasSuffix("(got \"\(value)\")"), "\(message)")
        }
        for mention in refused.mentions {
            #expect(message.contains(mention), "\(message) does not mention \(mention)")
        }
    }

    @Test("field errors carry the line of the bad value")
    func line() throws {
        let error = try #require(policyError { () throws(PolicyError) in
            try PolicyLoader.parse("# comment\nidle:\n  after: 30m\n  timestamps: [mtime, nope]\n", file: "p.yaml")
        })
        #expect(error.line == 4)
        #expect(error.column == 23)
        #expect(error.description == #"p.yaml: idle.timestamps[1]: unknown timestamp kind; known: mtime, ctime, atime (got "nope")"#)
    }

    @Test("the first problem in the file is the one reported")
    func firstProblem() throws {
        let error = try #require(policyError { () throws(PolicyError) in
            try PolicyLoader.parse("limits: {maxReapsPerCycle: -1}\nidle: {after: soon}\n", file: "p.yaml")
        })
        #expect(error.field == "limits.maxReapsPerCycle")
    }

    @Test("every error code is exercised")
    func everyCode() {
        var codes = Set(RefusedCase.all.map(\.code))
        codes.insert(.cannotRead) // LoadTests
        #expect(codes == Set(PolicyError.Code.allCases), "untested: \(Set(PolicyError.Code.allCases).subtracting(codes))")
    }

    @Test("a long or multi-line value stays on one short line")
    func longValue() throws {
        let error = try #require(policyError { () throws(PolicyError) in
            try PolicyLoader.parse("annotation:\n  key: |\n    line one\n    line \"two\"\n", file: "p.yaml")
        })
        #expect(!error.description.contains("\n"))
        #expect(error.description.contains(#"line one\nline \"two\"\n"#))
    }
}
