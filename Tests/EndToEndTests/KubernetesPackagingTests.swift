import Foundation
import Testing
import TestSupport

/// The DaemonSet (issues 9 and 19): `kubectl kustomize` renders both overlays
/// offline, alone and with the Prometheus Operator components; every object
/// passes the Kubernetes schemas (`kubernetes-validate --strict`) and checkov
/// (both pinned in packaging/kubernetes/requirements.txt, installed by
/// scripts/install-deps into .build-tools/venv); every namespaced object is in
/// the agent's namespace; and the fields are what the issues ask for.
@Suite("kubernetes packaging", .serialized)
struct KubernetesPackagingTests {
    static let root = PackagePaths.root.path
    static let kubernetes = root + "/packaging/kubernetes"
    static let tools = root + "/.build-tools/venv/bin"
    static let namespace = "volume-reaper"
    static let overlays = ["observe", "reap"]
    static let monitoring = ["servicemonitor", "prometheusrule"]
    /// Each overlay alone, and with both Prometheus Operator components.
    static let renderings: [(String, [String])] = overlays.flatMap { overlay -> [(String, [String])] in [(overlay, []), (overlay, monitoring)] }
    static let clusterScoped: Set<String> = ["Namespace", "ClusterRole", "ClusterRoleBinding"]
    /// Kinds kubernetes-validate has no schema for (the Prometheus Operator's CRDs).
    static let customKinds: Set<String> = ["ServiceMonitor", "PrometheusRule"]

    func kubectl() throws -> String {
        for candidate in ["/usr/bin/kubectl", "/usr/local/bin/kubectl"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw ExampleNodeError(message: "no kubectl: run scripts/install-deps")
    }

    /// A path relative to `directory` (kustomize refuses absolute resource paths).
    static func relative(_ path: String, from directory: String) -> String {
        String(repeating: "../", count: directory.split(separator: "/").count) + path.dropFirst()
    }

    /// Renders `kustomization` (the text of a user's own kustomization.yaml,
    /// with `@(path)` standing for a path of packaging/kubernetes) in a
    /// temporary directory with `files` beside it.
    func renderOwn(_ kustomization: String, files: [String: String] = [:]) throws -> String {
        let directory = try TemporaryDirectory("overlay")
        defer { directory.remove() }
        var text = kustomization
        while let range = text.range(of: #"@\(([^)]*)\)"#, options: .regularExpression) {
            let inner = String(text[range].dropFirst(2).dropLast())
            text.replaceSubrange(range, with: Self.relative(Self.kubernetes + "/" + inner, from: directory.path))
        }
        try text.write(toFile: directory.appending("kustomization.yaml"), atomically: true, encoding: .utf8)
        for (name, content) in files {
            try content.write(toFile: directory.appending(name), atomically: true, encoding: .utf8)
        }
        let result = try ChildProcess.run(try kubectl(), ["kustomize", directory.path])
        try #require(result.status == 0, "kubectl kustomize:\n\(text)\n\(result.stderr)")
        return result.stdout
    }

    func render(_ overlay: String, components: [String] = []) throws -> String {
        if components.isEmpty {
            let result = try ChildProcess.run(try kubectl(), ["kustomize", Self.kubernetes + "/overlays/" + overlay])
            try #require(result.status == 0, "kubectl kustomize \(overlay): \(result.stderr)")
            return result.stdout
        }
        // An overlay of the user's with the components, and no namespace of its own.
        return try renderOwn("""
            resources: [@(overlays/\(overlay))]
            components:
            \(components.map { "  - @(components/\($0))" }.joined(separator: "\n"))
            """)
    }

    /// The rendered objects, through PyYAML (the validator's own dependency) as JSON.
    func parse(_ yaml: String) throws -> [[String: Any]] {
        let result = try ChildProcess.run(
            Self.tools + "/python", ["-c", "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))"],
            input: yaml
        )
        try #require(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
    }

    func objects(_ overlay: String, components: [String] = []) throws -> [[String: Any]] {
        try parse(try render(overlay, components: components))
    }

    func object(_ objects: [[String: Any]], kind: String) throws -> [String: Any] {
        try #require(objects.first { $0["kind"] as? String == kind }, "no \(kind)")
    }

    func metadata(_ object: [String: Any]) -> [String: Any] { object["metadata"] as? [String: Any] ?? [:] }

    func podSpec(_ objects: [[String: Any]]) throws -> [String: Any] {
        let daemonSet = try object(objects, kind: "DaemonSet")
        let template = try #require((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])
        return try #require(template["spec"] as? [String: Any])
    }

    func agentContainer(_ objects: [[String: Any]]) throws -> [String: Any] {
        let containers = try #require(try podSpec(objects)["containers"] as? [[String: Any]])
        #expect(containers.count == 1)
        return try #require(containers.first)
    }

    func write(_ yaml: String, _ name: String, in directory: TemporaryDirectory) throws -> String {
        let file = directory.appending(name + ".yaml")
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func validate(_ yaml: String, _ name: String) throws -> ProcessResult {
        let directory = try TemporaryDirectory("kubernetes")
        defer { directory.remove() }
        return try ChildProcess.run(Self.tools + "/kubernetes-validate", ["--strict", "--quiet", try write(yaml, name, in: directory)])
    }

    /// The rendered YAML without the kinds the validator has no schema for.
    func withoutCustomKinds(_ yaml: String) throws -> String {
        let result = try ChildProcess.run(
            Self.tools + "/python",
            ["-c", "import sys, yaml; print(yaml.safe_dump_all([o for o in yaml.safe_load_all(sys.stdin) if o['kind'] not in sys.argv[1:]]))"]
                + Self.customKinds.sorted(),
            input: yaml
        )
        try #require(result.status == 0, "\(result.stderr)")
        return result.stdout
    }

    /// checkov with packaging/kubernetes/checkov.yaml over `files` (name -> YAML), in one run.
    func checkov(_ files: [String: String]) throws -> ProcessResult {
        let directory = try TemporaryDirectory("checkov")
        defer { directory.remove() }
        for (name, yaml) in files { _ = try write(yaml, name, in: directory) }
        return try ChildProcess.run(
            Self.tools + "/checkov", ["--config-file", Self.kubernetes + "/checkov.yaml", "--directory", directory.path, "--quiet"],
            environment: ["BC_SKIP_MAPPING": "TRUE"]
        )
    }

    @Test("both overlays, alone and with the monitoring components, pass the Kubernetes schemas; a broken one does not", arguments: renderings)
    func schemas(_ overlay: String, _ components: [String]) throws {
        let yaml = try render(overlay, components: components)
        let result = try validate(try withoutCustomKinds(yaml), overlay)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let kinds = Set(try parse(yaml).compactMap { $0["kind"] as? String })
        let base: Set<String> = [
            "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ResourceQuota", "NetworkPolicy", "ConfigMap", "DaemonSet",
        ]
        #expect(kinds == (components.isEmpty ? base : base.union(["Service", "ServiceMonitor", "PrometheusRule"])))
        // The validator does refuse: a misspelt field of the DaemonSet.
        let broken = try validate(yaml.replacingOccurrences(of: "mountPropagation:", with: "mountPropagaton:"), overlay + "-broken")
        #expect(broken.status != 0, "\(broken.stdout)")
    }

    @Test("every namespaced object, the components' too, is in the agent's namespace", arguments: renderings)
    func namespaces(_ overlay: String, _ components: [String]) throws {
        for object in try objects(overlay, components: components) {
            let kind = object["kind"] as? String ?? "?"
            let namespace = metadata(object)["namespace"] as? String
            if Self.clusterScoped.contains(kind) {
                #expect(namespace == nil, "\(kind) is cluster-scoped")
            } else {
                #expect(namespace == Self.namespace, "\(kind) \(metadata(object)["name"] ?? "")")
            }
        }
        // The components name it themselves: rendered on their own, in an
        // overlay that sets no namespace, they land there too.
        for component in Self.monitoring {
            let alone = try parse(try renderOwn("components: [@(components/\(component))]"))
            #expect(!alone.isEmpty)
            for object in alone {
                #expect(metadata(object)["namespace"] as? String == Self.namespace, "\(component): \(object["kind"] ?? "")")
            }
        }
    }

    @Test("checkov passes both overlays, alone and with the monitoring components; it does flag a privileged container")
    func checkovPasses() throws {
        var files: [String: String] = [:]
        for (overlay, components) in Self.renderings {
            files[([overlay] + components).joined(separator: "-")] = try render(overlay, components: components)
        }
        let result = try checkov(files)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("Failed checks: 0"), "\(result.stdout)\(result.stderr)")
        #expect(!result.stdout.contains("Passed checks: 0,"), "checkov ran no check: \(result.stdout)")
        // It does look: a privileged container fails the privileged-container check.
        let privileged = try #require(files["reap"]).replacingOccurrences(of: "privileged: false", with: "privileged: true")
        let broken = try checkov(["reap-privileged": privileged])
        #expect(broken.status != 0, "\(broken.stdout)")
        #expect(broken.stdout.contains("CKV_K8S_16"), "\(broken.stdout)")
    }

    @Test("each check checkov.yaml skips has a comment saying why")
    func checkovSkipsJustified() throws {
        let text = try String(contentsOfFile: Self.kubernetes + "/checkov.yaml", encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var skipped = 0
        for (index, line) in lines.enumerated() where line.trimmingCharacters(in: .whitespaces).hasPrefix("- CKV") {
            skipped += 1
            let previous = index > 0 ? lines[index - 1].trimmingCharacters(in: .whitespaces) : ""
            #expect(previous.hasPrefix("#") && previous.count > 20, "no reason above \(line)")
        }
        #expect(skipped > 0)
    }

    @Test("the DaemonSet's security fields, node selector, priority, tolerations and node name", arguments: overlays)
    func daemonSet(_ overlay: String) throws {
        let objects = try objects(overlay)
        let pod = try podSpec(objects)
        #expect(pod["priorityClassName"] as? String == "system-node-critical")
        #expect(pod["nodeSelector"] as? [String: String] == ["kubernetes.io/os": "linux"])
        #expect(pod["hostNetwork"] == nil && pod["hostPID"] == nil && pod["hostIPC"] == nil)
        let tolerations = try #require(pod["tolerations"] as? [[String: Any]])
        #expect(tolerations.contains { $0["operator"] as? String == "Exists" && $0["key"] == nil && $0["effect"] == nil })
        #expect(((pod["securityContext"] as? [String: Any])?["seccompProfile"] as? [String: Any])?["type"] as? String == "RuntimeDefault")

        let container = try agentContainer(objects)
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

        let env = try #require(container["env"] as? [[String: Any]])
        let nodeName = try #require(env.first { $0["name"] as? String == "NODE_NAME" })
        #expect(((nodeName["valueFrom"] as? [String: Any])?["fieldRef"] as? [String: Any])?["fieldPath"] as? String == "spec.nodeName")

        let resources = try #require(container["resources"] as? [String: Any])
        for kind in ["requests", "limits"] {
            let values = try #require(resources[kind] as? [String: Any], "\(kind)")
            #expect(values["cpu"] != nil && values["memory"] != nil, "\(kind)")
        }
        // The image tag is the repository's VERSION, set by the overlay's images:.
        let version = try String(contentsOfFile: Self.root + "/VERSION", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(container["image"] as? String == "localhost/volume-reaper:\(version)")
    }

    @Test("probes: liveness and startup GET /livez, readiness GET /readyz, on the metrics port; no probe asks the pod source", arguments: overlays)
    func probes(_ overlay: String) throws {
        let objects = try objects(overlay)
        let container = try agentContainer(objects)
        func probe(_ name: String) -> (path: String?, port: String?, exec: Any?) {
            let probe = container[name] as? [String: Any]
            let get = probe?["httpGet"] as? [String: Any]
            return (get?["path"] as? String, get?["port"] as? String, probe?["exec"])
        }
        #expect(probe("livenessProbe").path == "/livez" && probe("livenessProbe").port == "metrics")
        #expect(probe("startupProbe").path == "/livez" && probe("startupProbe").port == "metrics")
        #expect(probe("readinessProbe").path == "/readyz" && probe("readinessProbe").port == "metrics")
        for name in ["livenessProbe", "startupProbe", "readinessProbe"] {
            #expect(probe(name).exec == nil, "\(name): no exec (the image has no shell; status asks the pod source)")
        }
        // The port the probes name is the listener the config opens.
        let ports = try #require(container["ports"] as? [[String: Any]])
        #expect(ports.contains { $0["name"] as? String == "metrics" && $0["containerPort"] as? Int == 9847 })
        let config = try #require((try object(objects, kind: "ConfigMap")["data"] as? [String: String])?["config.yaml"])
        #expect(config.contains("\nmetrics:\n  listen: \":9847\"\n"))
        // The NetworkPolicy admits the probes and the scrape there, and nothing else.
        let policy = try #require(try object(objects, kind: "NetworkPolicy")["spec"] as? [String: Any])
        #expect(policy["policyTypes"] as? [String] == ["Ingress"])
        let ingress = try #require(policy["ingress"] as? [[String: Any]])
        #expect(ingress.count == 1 && ingress.first?["from"] == nil)
        #expect(ingress.first?["ports"] as? [[String: String]] == [["port": "metrics", "protocol": "TCP"]])
        let template = try #require((try object(objects, kind: "DaemonSet")["spec"] as? [String: Any])?["template"] as? [String: Any])
        let annotations = try #require((template["metadata"] as? [String: Any])?["annotations"] as? [String: String])
        #expect(annotations["prometheus.io/scrape"] == "true" && annotations["prometheus.io/port"] == "9847")
    }

    @Test("mounts: the kubelet's pods/ read-write, never the whole kubelet root or pki/", arguments: overlays)
    func mounts(_ overlay: String) throws {
        let objects = try objects(overlay)
        let pod = try podSpec(objects), container = try agentContainer(objects)
        let volumes = try #require(pod["volumes"] as? [[String: Any]])
        let mounts = try #require(container["volumeMounts"] as? [[String: Any]])
        func hostPath(_ name: String) -> [String: Any]? {
            volumes.first { $0["name"] as? String == name }?["hostPath"] as? [String: Any]
        }
        func mount(_ name: String) -> [String: Any]? { mounts.first { $0["name"] as? String == name } }
        #expect(hostPath("kubelet-pods")?["path"] as? String == "/var/lib/kubelet/pods")
        #expect(mount("kubelet-pods")?["mountPath"] as? String == "/var/lib/kubelet/pods")
        #expect(mount("kubelet-pods")?["mountPropagation"] as? String == "HostToContainer")
        #expect(mount("kubelet-pods")?["readOnly"] == nil)
        // The kubelet's config file is elsewhere on each distribution, and a
        // missing hostPath file keeps a pod from starting: mounted only by
        // components/kubelet-config (or kubelet-root-k0s).
        #expect(hostPath("kubelet-config") == nil && mount("kubelet-config") == nil)
        #expect(hostPath("state")?["path"] as? String == "/var/lib/volume-reaper")
        #expect(mount("state")?["mountPath"] as? String == "/var/lib/volume-reaper")
        #expect(hostPath("run")?["path"] as? String == "/run/volume-reaper")
        #expect(mount("run")?["mountPath"] as? String == "/run/volume-reaper")
        for volume in volumes {
            let path = (volume["hostPath"] as? [String: Any])?["path"] as? String ?? ""
            #expect(path != "/var/lib/kubelet" && !path.contains("/pki"), "\(volume)")
        }
        // Nothing else of the host is writable (the cgroup tree is read-only).
        for mount in mounts where mount["readOnly"] as? Bool != true {
            #expect(["kubelet-pods", "state", "run", "tmp"].contains(mount["name"] as? String ?? ""), "\(mount)")
        }
    }

    @Test("components/kubelet-config mounts /var/lib/kubelet/config.yaml read-only, a file, at the path the agent reads by default")
    func kubeletConfig() throws {
        let yaml = try renderOwn("resources: [@(overlays/observe)]\ncomponents: [@(components/kubelet-config)]")
        let validated = try validate(try withoutCustomKinds(yaml), "kubelet-config")
        #expect(validated.status == 0, "\(validated.stdout)\(validated.stderr)")
        let objects = try parse(yaml)
        let volumes = try #require(try podSpec(objects)["volumes"] as? [[String: Any]])
        let mounts = try #require(try agentContainer(objects)["volumeMounts"] as? [[String: Any]])
        let hostPath = volumes.first { $0["name"] as? String == "kubelet-config" }?["hostPath"] as? [String: Any]
        let mount = mounts.first { $0["name"] as? String == "kubelet-config" }
        #expect(hostPath?["path"] as? String == "/var/lib/kubelet/config.yaml" && hostPath?["type"] as? String == "File")
        #expect(mount?["mountPath"] as? String == "/var/lib/kubelet/config.yaml" && mount?["readOnly"] as? Bool == true)
        // The rest is the overlay's: pods/ still mounted, and the agent's default kubeletConfig is that path.
        #expect(mounts.contains { $0["name"] as? String == "kubelet-pods" })
        let manual = try String(contentsOfFile: Self.root + "/packaging/man/volume-reaper.8", encoding: .utf8)
        #expect(manual.contains("(default /var/lib/kubelet/config.yaml)"))
    }

    /// A components/kubelet-root-* and the paths it sets.
    struct KubeletRoot: Sendable, CustomTestStringConvertible {
        var component: String
        var root: String
        /// nil: no kubelet config file is mounted.
        var kubeletConfig: String?
        var testDescription: String { component }
    }

    static let kubeletRootComponents = [
        KubeletRoot(component: "kubelet-root-k0s", root: "/var/lib/k0s/kubelet", kubeletConfig: "/var/lib/k0s/kubelet-config.yaml"),
        KubeletRoot(component: "kubelet-root-microk8s", root: "/var/snap/microk8s/common/var/lib/kubelet", kubeletConfig: nil),
    ]

    @Test("components/kubelet-root-*: k0s's and microk8s's kubelet roots, mounted at the host's paths and passed to the agent", arguments: kubeletRootComponents)
    func kubeletRoots(_ setting: KubeletRoot) throws {
        let component = setting.component, root = setting.root, kubeletConfig = setting.kubeletConfig
        let yaml = try renderOwn("resources: [@(overlays/reap)]\ncomponents: [@(components/\(component))]")
        let validated = try validate(try withoutCustomKinds(yaml), component)
        #expect(validated.status == 0, "\(validated.stdout)\(validated.stderr)")
        let objects = try parse(yaml)
        let pod = try podSpec(objects), container = try agentContainer(objects)
        let volumes = try #require(pod["volumes"] as? [[String: Any]])
        let mounts = try #require(container["volumeMounts"] as? [[String: Any]])
        func hostPath(_ name: String) -> String? {
            (volumes.first { $0["name"] as? String == name }?["hostPath"] as? [String: Any])?["path"] as? String
        }
        func mountPath(_ name: String) -> String? { mounts.first { $0["name"] as? String == name }?["mountPath"] as? String }
        #expect(hostPath("kubelet-pods") == root + "/pods" && mountPath("kubelet-pods") == root + "/pods")
        #expect(hostPath("kubelet-config") == kubeletConfig && mountPath("kubelet-config") == kubeletConfig)
        let command = try #require(container["command"] as? [String])
        #expect(command.contains("--kubelet-root=" + root))
        #expect(command.contains { $0.hasPrefix("--kubelet-config=") } == (kubeletConfig != nil))
        if let kubeletConfig { #expect(command.contains("--kubelet-config=" + kubeletConfig)) }

        // The agent takes the command line: it plans over a node laid out at that root.
        let directory = try TemporaryDirectory("kubelet-root")
        defer { directory.remove() }
        let node = directory.path + root
        try FileManager.default.createDirectory(atPath: node + "/pods", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.appending("manifests"), withIntermediateDirectories: true)
        let config = directory.appending("config.yaml")
        let configText = try #require((try object(objects, kind: "ConfigMap")["data"] as? [String: String])?["config.yaml"])
        try configText.write(toFile: config, atomically: true, encoding: .utf8)
        let flags = command.filter { $0.hasPrefix("--kubelet-") }.map { $0.replacingOccurrences(of: "=/", with: "=" + directory.path + "/") }
        let plan = try ChildProcess.run(PackagePaths.binary, [
            "--plan", "--config", config, "--pod-source", "files", "--manifests", directory.appending("manifests"),
            "--policy", Self.root + "/policies/default.yaml", "--state-dir", directory.appending("state"), "--json",
        ] + flags)
        #expect(plan.status == 0, "\(plan.stderr)")
    }

    @Test("priorityClassName system-node-critical is admitted outside kube-system: a ResourceQuota in the namespace scoped to that class")
    func priorityQuota() throws {
        let objects = try objects("observe")
        let quota = try object(objects, kind: "ResourceQuota")
        #expect(metadata(quota)["namespace"] as? String == Self.namespace)
        let spec = try #require(quota["spec"] as? [String: Any])
        let expressions = try #require((spec["scopeSelector"] as? [String: Any])?["matchExpressions"] as? [[String: Any]])
        #expect(expressions.count == 1)
        #expect(expressions.first?["scopeName"] as? String == "PriorityClass")
        #expect(expressions.first?["operator"] as? String == "In")
        #expect(expressions.first?["values"] as? [String] == [try podSpec(objects)["priorityClassName"] as? String ?? "?"])
        // It bounds nothing in practice: more pods than Kubernetes' largest cluster has nodes.
        let pods = try #require((spec["hard"] as? [String: Any])?["pods"] as? String)
        #expect((Int(pods) ?? 0) >= 5000)
    }

    @Test("an overlay of yours sets registry and tag in one images: entry and merges its own policy, in the agent's namespace")
    func ownOverlay() throws {
        let policy = try String(contentsOfFile: Self.root + "/policies/default.yaml", encoding: .utf8)
            .replacingOccurrences(of: "\n  after: 30m\n", with: "\n  after: 2h\n")
        let objects = try parse(try renderOwn("""
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - @(overlays/observe)
            images:
              - name: localhost/volume-reaper
                newName: registry.example.com/infra/volume-reaper
                newTag: 9.9.9
            configMapGenerator:
              - name: volume-reaper
                behavior: merge
                files:
                  - policy.yaml
            """, files: ["policy.yaml": policy]))
        #expect(try agentContainer(objects)["image"] as? String == "registry.example.com/infra/volume-reaper:9.9.9")
        let configMap = try object(objects, kind: "ConfigMap")
        let data = try #require(configMap["data"] as? [String: String])
        #expect(data["policy.yaml"] == policy)
        #expect(data["config.yaml"]?.contains("\ndryRun: true\n") == true, "the rest of the config map is kept")
        // The DaemonSet mounts the merged config map (its hashed name).
        let name = try #require(metadata(configMap)["name"] as? String)
        let volumes = try #require(try podSpec(objects)["volumes"] as? [[String: Any]])
        #expect((volumes.first { $0["name"] as? String == "config" }?["configMap"] as? [String: Any])?["name"] as? String == name)
        for object in objects where !Self.clusterScoped.contains(object["kind"] as? String ?? "") {
            #expect(metadata(object)["namespace"] as? String == Self.namespace)
        }
    }

    @Test("ServiceMonitor: its Service selects the DaemonSet's pods, job is volume-reaper, and a node label comes from the pod's node")
    func serviceMonitor() throws {
        let objects = try objects("reap", components: ["servicemonitor"])
        let service = try object(objects, kind: "Service"), monitor = try object(objects, kind: "ServiceMonitor")
        // The Prometheus Operator's job label is the Service's name, which the agent-down alerts select.
        #expect(metadata(service)["name"] as? String == "volume-reaper")
        let rules = try String(contentsOfFile: Self.root + "/packaging/prometheus/volume-reaper.rules.yaml", encoding: .utf8)
        #expect(rules.contains("up{job=\"volume-reaper\"}"))
        let serviceSpec = try #require(service["spec"] as? [String: Any])
        let template = try #require((try object(objects, kind: "DaemonSet")["spec"] as? [String: Any])?["template"] as? [String: Any])
        let podLabels = try #require((template["metadata"] as? [String: Any])?["labels"] as? [String: String])
        let selector = try #require(serviceSpec["selector"] as? [String: String])
        #expect(selector.allSatisfy { podLabels[$0.key] == $0.value })
        let servicePort = try #require((serviceSpec["ports"] as? [[String: Any]])?.first)
        #expect(servicePort["targetPort"] as? String == "metrics" && servicePort["name"] as? String == "metrics")

        let spec = try #require(monitor["spec"] as? [String: Any])
        let matchLabels = try #require((spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String])
        let serviceLabels = metadata(service)["labels"] as? [String: String] ?? [:]
        #expect(matchLabels.allSatisfy { serviceLabels[$0.key] == $0.value })
        #expect(spec["namespaceSelector"] == nil, "its own namespace, wherever an overlay puts it")
        let endpoint = try #require((spec["endpoints"] as? [[String: Any]])?.first)
        #expect(endpoint["port"] as? String == "metrics" && endpoint["path"] as? String == "/metrics")
        let relabelings = try #require(endpoint["relabelings"] as? [[String: Any]])
        #expect(relabelings.contains {
            $0["sourceLabels"] as? [String] == ["__meta_kubernetes_pod_node_name"] && $0["targetLabel"] as? String == "node"
        })
    }

    @Test("RBAC: get, list and watch pods, create and patch events.k8s.io events, nothing else, bound to the DaemonSet's service account", arguments: ["observe", "reap"])
    func rbac(_ overlay: String) throws {
        let objects = try objects(overlay)
        let role = try object(objects, kind: "ClusterRole")
        let rules = try #require(role["rules"] as? [[String: Any]])
        #expect(rules.count == 2)
        #expect(rules.first?["apiGroups"] as? [String] == [""])
        #expect(rules.first?["resources"] as? [String] == ["pods"])
        #expect(Set(rules.first?["verbs"] as? [String] ?? []) == ["get", "list", "watch"])
        // The Events the config turns on (podSource.events): create, and patch for a series.
        #expect(rules.last?["apiGroups"] as? [String] == ["events.k8s.io"])
        #expect(rules.last?["resources"] as? [String] == ["events"])
        #expect(Set(rules.last?["verbs"] as? [String] ?? []) == ["create", "patch"])
        let config = try #require((try object(objects, kind: "ConfigMap")["data"] as? [String: String])?["config.yaml"])
        #expect(config.contains("\n  kind: apiserver\n") && config.contains("\n  events: true\n"), "\(config)")
        let binding = try object(objects, kind: "ClusterRoleBinding")
        let subject = try #require((binding["subjects"] as? [[String: Any]])?.first)
        #expect(subject["name"] as? String == "volume-reaper" && subject["namespace"] as? String == "volume-reaper")
        #expect(try podSpec(objects)["serviceAccountName"] as? String == "volume-reaper")
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
