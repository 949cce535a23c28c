import Foundation
import ReaperCore
import Testing

/// The plan as users and scripts read it: the JSON contract of design §6 and the table.
@Suite("Plan output")
struct PlanOutputTests {
    /// A terminated pod's volume (reap), an orphan CSI volume (keep: not-empty) and one with no timestamps.
    static func samplePlan() -> Plan {
        var node = NodeFixture()
        node.pods = [Fixture.pod(Fixture.uid(1))]
        node.addVolume(uid: Fixture.uid(1), scan: Fixture.scan(bytes: 65536, files: 4))
        node.addVolume(uid: Fixture.uid(2), plugin: .csi, name: "pvc-0a1b2c3d", scan: Fixture.scan(bytes: 1_572_864))
        node.addVolume(uid: Fixture.uid(1), plugin: .configMap, name: "blank", scan: VolumeScan())
        node.pods[0].lastContainerFinishedAt = nil
        return node.plan()
    }

    static let volumeKeys: Set<String> = [
        "path", "podUID", "namespace", "pod", "plugin", "name", "verdict", "reasons", "lastAccess",
        "lastAccessSource", "idleSeconds", "bytes", "mounted",
    ]

    func json(_ plan: Plan) throws -> (text: String, object: [String: Any]) {
        let data = try plan.jsonData()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (String(decoding: data, as: UTF8.self), object)
    }

    @Test("Plan JSON has the contract keys of design §6")
    func contractKeys() throws {
        let (_, object) = try json(Self.samplePlan())
        for key in ["generatedAt", "manifests", "summary", "volumes"] { #expect(object[key] != nil, "missing \(key)") }
        let manifests = try #require(object["manifests"] as? [String: Any])
        for key in ["path", "refreshedAt", "complete", "errors"] { #expect(manifests[key] != nil, "missing manifests.\(key)") }
        #expect(manifests["path"] as? String == Fixture.manifestsPath)
        #expect(manifests["complete"] as? Bool == true)
        #expect((manifests["errors"] as? [Any])?.isEmpty == true)
        let summary = try #require(object["summary"] as? [String: Any])
        #expect(summary["reap"] as? Int == 1)
        #expect(summary["keep"] as? Int == 2)
        #expect(summary["bytes"] as? Int == 65536)
        let volumes = try #require(object["volumes"] as? [[String: Any]])
        #expect(volumes.count == 3)
        for volume in volumes {
            let missing = Self.volumeKeys.subtracting(volume.keys)
            #expect(missing.isEmpty, "missing \(missing.sorted()) in \(volume["path"] ?? "?")")
        }
    }

    @Test("Plan JSON values: verdicts, reason codes, unescaped plugins, RFC 3339 dates, pod null for an orphan")
    func contractValues() throws {
        let (text, object) = try json(Self.samplePlan())
        #expect(RFC3339.parse(try #require(object["generatedAt"] as? String)) == Fixture.now)
        let manifests = try #require(object["manifests"] as? [String: Any])
        #expect(RFC3339.parse(try #require(manifests["refreshedAt"] as? String)) == Fixture.ago(60))

        let volumes = try #require(object["volumes"] as? [[String: Any]])
        func volume(named name: String) throws -> [String: Any] {
            try #require(volumes.first { $0["name"] as? String == name }, "no volume \(name)")
        }
        let reaped = try volume(named: "scratch")
        #expect(reaped["path"] as? String == Fixture.volumePath(Fixture.uid(1), .emptyDir, "scratch"))
        #expect(reaped["podUID"] as? String == Fixture.uid(1))
        #expect(reaped["namespace"] as? String == "batch")
        #expect(reaped["pod"] as? String == "report-job-1")
        #expect(reaped["plugin"] as? String == "kubernetes.io/empty-dir")
        #expect(reaped["verdict"] as? String == "reap")
        #expect(reaped["reasons"] as? [String] == ["pod-terminated", "idle"])
        #expect(RFC3339.parse(try #require(reaped["lastAccess"] as? String)) == Fixture.ago(3 * 3600))
        #expect(reaped["lastAccessSource"] as? String == "mtime")
        #expect(reaped["idleSeconds"] as? Int == 3 * 3600)
        #expect(reaped["bytes"] as? Int == 65536)
        #expect(reaped["mounted"] as? Bool == false)

        let orphan = try volume(named: "pvc-0a1b2c3d")
        #expect(orphan["pod"] is NSNull, "pod is null for an orphan")
        #expect(orphan["namespace"] is NSNull)
        #expect(orphan["plugin"] as? String == "kubernetes.io/csi")
        #expect(orphan["verdict"] as? String == "keep")
        #expect(orphan["reasons"] as? [String] == ["not-empty"])

        let blank = try volume(named: "blank")
        #expect(blank["lastAccess"] is NSNull)
        #expect(blank["lastAccessSource"] is NSNull)
        #expect(blank["reasons"] as? [String] == ["inconclusive"])

        #expect(!text.contains(#""plugin" : "kubernetes.io~"#), "plugins are written unescaped")
        #expect(!text.contains("\\/"), "slashes are not escaped")
        #expect(text.contains("\"generatedAt\" : \"2026-11-18T11:06:40Z\""))
    }

    @Test("Plan JSON decodes back to the same plan")
    func roundTrip() throws {
        let plan = Self.samplePlan()
        let decoded = try Plan.decoder().decode(Plan.self, from: try plan.jsonData(pretty: false))
        #expect(decoded == plan)
    }

    @Test("the plan is sorted by path and its summary counts what it lists")
    func summary() throws {
        let plan = Self.samplePlan()
        #expect(plan.volumes.map(\.path) == plan.volumes.map(\.path).sorted())
        #expect(plan.summary == PlanSummary(reap: 1, keep: 2, bytes: 65536))
        #expect(plan.generatedAt == Fixture.now)
        #expect(plan.kubeletRoot == Fixture.kubeletRoot)
        #expect(plan.manifests.files == 1)
        #expect(plan.manifests.pods == 1)
    }

    // MARK: The table

    @Test("the table has a header, one row per volume, reaps first, human sizes and a summary line")
    func table() throws {
        let plan = Self.samplePlan()
        let text = PlanTable.render(plan, now: Fixture.now)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains { $0.hasPrefix("VERDICT") && $0.contains("REASONS") })
        let rows = lines.filter { $0.hasPrefix("reap ") || $0.hasPrefix("keep ") }
        #expect(rows.count == 3)
        #expect(rows.first?.hasPrefix("reap ") == true)
        #expect(rows[0].contains("64.0 KiB") && rows[0].contains("batch/report-job-1") && rows[0].contains("pod-terminated,idle"))
        #expect(rows[0].contains("3h"), "idle time for people: \(rows[0])")
        #expect(rows.contains { $0.contains("1.5 MiB") && $0.contains("(orphan 5e1f0000)") && $0.contains("kubernetes.io/csi") })
        #expect(lines.contains("3 volumes in /var/lib/kubelet: 1 to reap (64.0 KiB), 2 to keep"))
        #expect(PlanTable.summaryLine(plan) == "3 volumes in /var/lib/kubelet: 1 to reap (64.0 KiB), 2 to keep")
        #expect(lines[0].contains("refreshed 1m ago") && lines[0].contains("complete"), "\(lines[0])")
    }

    @Test("the table shows manifest errors and alerts")
    func tableErrorsAndAlerts() throws {
        var node = NodeFixture()
        node.pods = [Fixture.pod(Fixture.uid(9), phase: "Running")]
        node.addVolume(uid: Fixture.uid(1))
        node.policy.limits.maxOrphanFraction = 0  // the one orphan is too many
        var text = PlanTable.render(node.plan(), now: Fixture.now)
        #expect(text.contains("ALERT limit-orphan-fraction: 1 of 1 pod directories"), "\(text)")
        #expect(!text.contains("INCOMPLETE"))

        node.manifestErrors = [ManifestError(file: "/m/broken.yaml", message: "line 3: mapping values are not allowed")]
        text = PlanTable.render(node.plan(), now: Fixture.now)
        #expect(text.contains("INCOMPLETE"))
        #expect(text.contains("error: /m/broken.yaml: line 3: mapping values are not allowed"))
        #expect(!text.contains("ALERT"), "an incomplete snapshot keeps orphans before the breaker sees them")
    }

    @Test("byte counts for people", arguments: [(UInt64, String)]([
        (UInt64(0), "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (65536, "64.0 KiB"),
        (1_048_576, "1.0 MiB"), (5 * 1024 * 1024 * 1024, "5.0 GiB"),
    ]))
    func byteCount(bytes: UInt64, text: String) {
        #expect(ByteCount.format(bytes) == text)
    }
}
