import Foundation
import Testing
import TestSupport

/// The DaemonSet (issue 9, item 4): `kubectl kustomize` renders both overlays
/// offline, every object passes the Kubernetes schemas (`kubernetes-validate`,
/// pinned in packaging/kubernetes/requirements.txt, installed by
/// scripts/install-deps into .build-tools/venv), and the security fields are
/// what the issue asks for.
@Suite("kubernetes packaging", .serialized)
struct KubernetesPackagingTests {
    static let root = PackagePaths.root.path
    static let tools = root + "/.build-tools/venv/bin"
    static let overlays = ["observe", "reap"]

    func kubectl() throws -> String {
        for candidate in ["/usr/bin/kubectl", "/usr/local/bin/kubectl"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw ExampleNodeError(message: "no kubectl: run scripts/install-deps")
    }

    func render(_ overlay: String) throws -> String {
        let result = try ChildProcess.run(try kubectl(), ["kustomize", Self.root + "/packaging/kubernetes/overlays/" + overlay])
        try #require(result.status == 0, "kubectl kustomize \(overlay): \(result.stderr)")
        return result.stdout
    }

    /// The rendered objects, through PyYAML (the validator's own dependency) as JSON.
    func objects(_ overlay: String) throws -> [[String: Any]] {
        let result = try ChildProcess.run(
            Self.tools + "/python", ["-c", "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))"],
            input: try render(overlay)
        )
        try #require(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
    }

    func object(_ objects: [[String: Any]], kind: String) throws -> [String: Any] {
        try #require(objects.first { $0["kind"] as? String == kind }, "no \(kind)")
    }

    func validate(_ yaml: String, _ name: String) throws -> ProcessResult {
        let directory = try TemporaryDirectory("kubernetes")
        defer { directory.remove() }
        let file = directory.appending(name + ".yaml")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        return try ChildProcess.run(Self.tools + "/kubernetes-validate", ["--strict", "--quiet", file])
    }

    @Test("every rendered object of both overlays passes the Kubernetes schemas; a broken one does not", arguments: overlays)
    func schemas(_ overlay: String) throws {
        let yaml = try render(overlay)
        let result = try validate(yaml, overlay)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let kinds = Set(try objects(overlay).compactMap { $0["kind"] as? String })
        #expect(kinds == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"])
        // The validator does refuse: a misspelt field of the DaemonSet.
        let broken = try validate(yaml.replacingOccurrences(of: "mountPropagation:", with: "mountPropagaton:"), overlay + "-broken")
        #expect(broken.status != 0, "\(broken.stdout)")
    }

    @Test("the DaemonSet's security fields, host paths, node name, priority, tolerations and probes", arguments: overlays)
    func daemonSet(_ overlay: String) throws {
        let objects = try objects(overlay)
        let daemonSet = try object(objects, kind: "DaemonSet")
        let spec = try #require((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])["spec"] as? [String: Any]
        let pod = try #require(spec)
        #expect(pod["priorityClassName"] as? String == "system-node-critical")
        #expect(pod["hostNetwork"] == nil && pod["hostPID"] == nil && pod["hostIPC"] == nil)
        let tolerations = try #require(pod["tolerations"] as? [[String: Any]])
        #expect(tolerations.contains { $0["operator"] as? String == "Exists" && $0["key"] == nil && $0["effect"] == nil })
        #expect(((pod["securityContext"] as? [String: Any])?["seccompProfile"] as? [String: Any])?["type"] as? String == "RuntimeDefault")

        let containers = try #require(pod["containers"] as? [[String: Any]])
        #expect(containers.count == 1)
        let container = try #require(containers.first)
        let security = try #require(container["securityContext"] as? [String: Any])
        #expect(security["readOnlyRootFilesystem"] as? Bool == true)
        #expect(security["allowPrivilegeEscalation"] as? Bool == false)
        #expect(security["privileged"] as? Bool == false)
        #expect((security["seccompProfile"] as? [String: Any])?["type"] as? String == "RuntimeDefault")
        let capabilities = try #require(security["capabilities"] as? [String: Any])
        #expect(capabilities["drop"] as? [String] == ["ALL"])
        // Exactly the systemd unit's CapabilityBoundingSet: what deleting pod files needs.
        let unit = try String(contentsOfFile: Self.root + "/packaging/systemd/volume-reaper.service", encoding: .utf8)
        let bounding = try #require(unit.split(separator: "\n").first { $0.hasPrefix("CapabilityBoundingSet=") })
        let unitCapabilities = Set(bounding.dropFirst("CapabilityBoundingSet=".count).split(separator: " ").map { String($0.dropFirst("CAP_".count)) })
        #expect(Set(capabilities["add"] as? [String] ?? []) == unitCapabilities)
        #expect(!unitCapabilities.contains("SYS_ADMIN"))

        // Prometheus: the metrics port, and the pod's plain scrape annotations.
        let ports = try #require(container["ports"] as? [[String: Any]])
        #expect(ports.contains { $0["name"] as? String == "metrics" && $0["containerPort"] as? Int == 9847 })
        let template = try #require((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])
        let annotations = try #require((template["metadata"] as? [String: Any])?["annotations"] as? [String: String])
        #expect(annotations["prometheus.io/scrape"] == "true" && annotations["prometheus.io/port"] == "9847")

        let env = try #require(container["env"] as? [[String: Any]])
        let nodeName = try #require(env.first { $0["name"] as? String == "NODE_NAME" })
        #expect(((nodeName["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String == "spec.nodeName")

        let volumes = try #require(pod["volumes"] as? [[String: Any]])
        func hostPath(_ name: String) -> String? {
            (volumes.first { $0["name"] as? String == name }?["hostPath"] as? [String: Any])?["path"] as? String
        }
        let mounts = try #require(container["volumeMounts"] as? [[String: Any]])
        func mount(_ name: String) -> [String: Any]? { mounts.first { $0["name"] as? String == name } }
        #expect(hostPath("kubelet") == "/var/lib/kubelet")
        #expect(mount("kubelet")?["mountPath"] as? String == "/var/lib/kubelet")
        #expect(mount("kubelet")?["mountPropagation"] as? String == "HostToContainer")
        #expect(hostPath("state") == "/var/lib/volume-reaper")
        #expect(mount("state")?["mountPath"] as? String == "/var/lib/volume-reaper")
        #expect(hostPath("run") == "/run/volume-reaper")
        #expect(mount("run")?["mountPath"] as? String == "/run/volume-reaper")
        // Nothing else of the host is writable (the cgroup tree is read-only).
        for mount in mounts where mount["readOnly"] as? Bool != true {
            #expect(["kubelet", "state", "run", "tmp"].contains(mount["name"] as? String ?? ""), "\(mount)")
        }

        let resources = try #require(container["resources"] as? [String: Any])
        for kind in ["requests", "limits"] {
            let values = try #require(resources[kind] as? [String: Any], "\(kind)")
            #expect(values["cpu"] != nil && values["memory"] != nil, "\(kind)")
        }
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let command = ((container[probe] as? [String: Any])?["exec"] as? [String: Any])?["command"] as? [String]
            #expect(command == ["/usr/bin/volume-reaper", "status", "--socket", "/run/volume-reaper/api.sock"], "\(probe)")
        }
        // The image tag is the repository's VERSION.
        let version = try String(contentsOfFile: Self.root + "/VERSION", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(container["image"] as? String == "localhost/volume-reaper:\(version)")
    }

    @Test("RBAC: get, list and watch pods, nothing else, bound to the DaemonSet's service account")
    func rbac() throws {
        let objects = try objects("observe")
        let role = try object(objects, kind: "ClusterRole")
        let rules = try #require(role["rules"] as? [[String: Any]])
        #expect(rules.count == 1)
        #expect(rules.first?["apiGroups"] as? [String] == [""])
        #expect(rules.first?["resources"] as? [String] == ["pods"])
        #expect(Set(rules.first?["verbs"] as? [String] ?? []) == ["get", "list", "watch"])
        let binding = try object(objects, kind: "ClusterRoleBinding")
        let subject = try #require((binding["subjects"] as? [[String: Any]])?.first)
        #expect(subject["name"] as? String == "volume-reaper" && subject["namespace"] as? String == "volume-reaper")
        let pod = ((try object(objects, kind: "DaemonSet")["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]
        #expect(pod?["serviceAccountName"] as? String == "volume-reaper")
    }

    @Test("observe renders dryRun: true, reap dryRun: false, and the configs differ in that line only; both load; the policy is the default")
    func configMaps() throws {
        func data(_ overlay: String) throws -> [String: String] {
            try #require(try object(try objects(overlay), kind: "ConfigMap")["data"] as? [String: String])
        }
        let observe = try data("observe"), reap = try data("reap")
        let observeConfig = try #require(observe["config.yaml"]), reapConfig = try #require(reap["config.yaml"])
        #expect(observeConfig.contains("\ndryRun: true\n"))
        #expect(reapConfig.contains("\ndryRun: false\n"))
        #expect(observeConfig.replacingOccurrences(of: "\ndryRun: true\n", with: "\ndryRun: false\n") == reapConfig)
        #expect(!observeConfig.contains("kubeconfig:"), "in-cluster: no kubeconfig")
        #expect(observeConfig.contains("kind: apiserver"))
        let defaultPolicy = try String(contentsOfFile: Self.root + "/policies/default.yaml", encoding: .utf8)
        #expect(observe["policy.yaml"] == defaultPolicy && reap["policy.yaml"] == defaultPolicy)

        // The rendered config loads in the agent (its host paths pointed at a temp node).
        let directory = try TemporaryDirectory("kubeconfig-check")
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.appending("kubelet/pods"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.appending("manifests"), withIntermediateDirectories: true)
        try defaultPolicy.write(toFile: directory.appending("policy.yaml"), atomically: true, encoding: .utf8)
        for (name, config) in [("observe", observeConfig), ("reap", reapConfig)] {
            let file = directory.appending(name + ".yaml")
            try config.write(toFile: file, atomically: true, encoding: .utf8)
            let plan = try ChildProcess.run(PackagePaths.binary, [
                "--plan", "--config", file, "--pod-source", "files", "--kubelet-root", directory.appending("kubelet"),
                "--manifests", directory.appending("manifests"), "--policy", directory.appending("policy.yaml"),
                "--state-dir", directory.appending("state"),
            ])
            #expect(plan.status == 0, "\(name): \(plan.stderr)")
        }
    }
}
