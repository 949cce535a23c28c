import Foundation
import Testing
import TestSupport

/// The alert rules (issue 19, item 5): Debian's promtool accepts them and
/// fires every alert in its unit tests (packaging/prometheus/*.test.yaml);
/// every alert has a runbook_url whose runbook is in docs/runbooks; the
/// PrometheusRule component carries exactly the rules file's groups.
@Suite("alert rules")
struct AlertRulesTests {
    static let root = PackagePaths.root.path
    static let promtool = "/usr/bin/promtool"
    static let prometheus = root + "/packaging/prometheus"
    static let rulesFile = prometheus + "/volume-reaper.rules.yaml"
    static let prometheusRule = root + "/packaging/kubernetes/components/prometheusrule/prometheusrule.yaml"
    static let runbookBase = "https://github.com/volume-reaper/volume-reaper/blob/main/docs/runbooks/"

    /// A YAML file as JSON, through the venv's PyYAML (scripts/install-deps).
    static func load(_ path: String) throws -> Any {
        let result = try ChildProcess.run(
            root + "/.build-tools/venv/bin/python", ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", path]
        )
        try #require(result.status == 0, "\(path): \(result.stderr)")
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    static func alerts() throws -> [[String: Any]] {
        let groups = try #require((try load(rulesFile) as? [String: Any])?["groups"] as? [[String: Any]])
        return groups.flatMap { $0["rules"] as? [[String: Any]] ?? [] }.filter { $0["alert"] != nil }
    }

    static func testFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: prometheus).filter { $0.hasSuffix(".test.yaml") }.sorted().map { prometheus + "/" + $0 }
    }

    @Test("promtool check rules accepts the rules, and they name series the agent exports")
    func check() throws {
        let check = try ChildProcess.run(Self.promtool, ["check", "rules", Self.rulesFile])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let alerts = try Self.alerts()
        #expect(check.stdout.contains("SUCCESS: \(alerts.count) rules found"), "\(check.stdout)")
        let text = try String(contentsOfFile: Self.rulesFile, encoding: .utf8)
        for series in [
            "volume_reaper_plan_alerts", "volume_reaper_pod_view_age_seconds", "volume_reaper_last_reconcile_failed", "volume_reaper_polled_volumes",
            "volume_reaper_disk_pressure_nothing_to_reap", "volume_reaper_pod_source_synced", "volume_reaper_pod_liveness_tree_found",
            "up{job=\"volume-reaper\"}", "absent(up{job=\"volume-reaper\"})",
        ] {
            #expect(text.contains(series), "no rule on \(series)")
        }
        for code in ["limit-orphan-fraction", "pod-view-shrank"] {
            #expect(text.contains("volume_reaper_plan_alerts{code=\"\(code)\"}"), "no rule on the plan alert \(code)")
        }
    }

    @Test("promtool test rules passes, and the unit tests fire every alert")
    func unitTestsFireEveryAlert() throws {
        let files = try Self.testFiles()
        try #require(!files.isEmpty, "no packaging/prometheus/*.test.yaml")
        let result = try ChildProcess.run(Self.promtool, ["test", "rules"] + files)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        var fired: Set<String> = []
        for file in files {
            let tests = try #require((try Self.load(file) as? [String: Any])?["tests"] as? [[String: Any]])
            for test in tests {
                for case let check as [String: Any] in test["alert_rule_test"] as? [Any] ?? [] {
                    if let name = check["alertname"] as? String, !((check["exp_alerts"] as? [Any]) ?? []).isEmpty { fired.insert(name) }
                }
            }
        }
        let names = Set(try Self.alerts().compactMap { $0["alert"] as? String })
        #expect(names.count >= 10)
        #expect(names.subtracting(fired).isEmpty, "never fired in a unit test: \(names.subtracting(fired).sorted())")
        #expect(fired.subtracting(names).isEmpty, "tests of alerts that do not exist: \(fired.subtracting(names).sorted())")
    }

    @Test("a unit test expecting the wrong summary fails: promtool does compare the annotations")
    func unitTestsCompare() throws {
        let directory = try TemporaryDirectory("promtool")
        defer { directory.remove() }
        try FileManager.default.copyItem(atPath: Self.rulesFile, toPath: directory.appending("volume-reaper.rules.yaml"))
        let test = try String(contentsOfFile: Self.prometheus + "/volume-reaper.test.yaml", encoding: .utf8)
        let broken = test.replacingOccurrences(of: "cannot be scraped\"", with: "is fine\"")
        try #require(broken != test)
        try broken.write(toFile: directory.appending("broken.test.yaml"), atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(Self.promtool, ["test", "rules", directory.appending("broken.test.yaml")])
        #expect(result.status != 0)
        #expect((result.stdout + result.stderr).contains("VolumeReaperDown"))
    }

    @Test("every alert has a severity, a summary, a description and a runbook_url whose runbook exists and covers both installs")
    func runbooks() throws {
        let index = try String(contentsOfFile: Self.root + "/docs/runbooks/README.md", encoding: .utf8)
        for alert in try Self.alerts() {
            let name = try #require(alert["alert"] as? String)
            let annotations = alert["annotations"] as? [String: String] ?? [:]
            #expect((alert["labels"] as? [String: String])?["severity"] != nil, "\(name): severity")
            #expect(annotations["summary"]?.isEmpty == false && annotations["description"]?.isEmpty == false, "\(name)")
            #expect(annotations["runbook_url"] == Self.runbookBase + name + ".md", "\(name): runbook_url \(annotations["runbook_url"] ?? "none")")
            let path = Self.root + "/docs/runbooks/\(name).md"
            let runbook = try #require(try? String(contentsOfFile: path, encoding: .utf8), "\(name): no \(path)")
            #expect(runbook.hasPrefix("# \(name)\n"), "\(name): title")
            #expect(runbook.contains("**Means:**"), "\(name): what it means")
            #expect(runbook.contains("kubectl logs -n volume-reaper") || runbook.contains("kubectl exec -n volume-reaper"), "\(name): DaemonSet commands")
            #expect(runbook.contains("journalctl") || runbook.contains("volume-reaper status"), "\(name): systemd commands")
            #expect(index.contains("[\(name).md](\(name).md)"), "\(name): not in docs/runbooks/README.md")
        }
    }

    @Test("the PrometheusRule component carries exactly the rules file's groups, and is what the generator prints")
    func prometheusRuleComponent() throws {
        let rule = try #require(try Self.load(Self.prometheusRule) as? [String: Any])
        #expect(rule["kind"] as? String == "PrometheusRule" && rule["apiVersion"] as? String == "monitoring.coreos.com/v1")
        let metadata = rule["metadata"] as? [String: Any]
        #expect(metadata?["namespace"] as? String == "volume-reaper")
        func canonical(_ value: Any?) throws -> Data {
            try JSONSerialization.data(withJSONObject: try #require(value as? [Any]), options: [.sortedKeys])
        }
        let groups = try canonical((rule["spec"] as? [String: Any])?["groups"])
        let source = try canonical((try Self.load(Self.rulesFile) as? [String: Any])?["groups"])
        #expect(groups == source, "edit packaging/prometheus/volume-reaper.rules.yaml, then make prometheusrule")
        let generated = try ChildProcess.run(Self.root + "/scripts/generate-prometheusrule", [])
        #expect(generated.status == 0, "\(generated.stderr)")
        #expect(try generated.stdout == String(contentsOfFile: Self.prometheusRule, encoding: .utf8), "run make prometheusrule")
    }
}
