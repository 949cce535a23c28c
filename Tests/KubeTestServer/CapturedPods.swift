import Foundation
import Yams

/// Real pod documents captured from clusters (see Fixtures/SOURCES.md), for
/// the test server and for tests that build matching pod directories.
public enum CapturedPods {
    /// A kubelet `GET /pods` answer (Kubernetes 1.35, node `datagen-1-35`), the
    /// bytes as captured, two of its 24 items kept: a Failed job pod and the
    /// static pod `kube-scheduler-datagen-1-35` under its config hash.
    public static let kubeletPods = "kubelet-pods-1.35-datagen.json"
    /// `kubectl get pods -A -o yaml` of the same cluster (three of its 27
    /// items kept): the scheduler's mirror pod (another UID, `config.mirror`
    /// pointing at the hash), `metrics-server` (an emptyDir) and the same Failed job pod.
    public static let kubectlPods = "kubectl-pods-1.35-datagen.yaml"
    /// The node both 1.35 captures come from.
    public static let nodeName = "datagen-1-35"
    /// An older kubelet `/pods` (Kubernetes 1.8, node `my-node-name`, pretty
    /// JSON), two of its items: a static pod with `creationTimestamp: null`
    /// (Pending) and an API pod (Running).
    public static let kubeletPodsOld = "kubelet-pods-1.8-datadog.json"

    /// The fixture's path on disk.
    public static func path(_ name: String) -> String {
        if let resources = Bundle.module.resourceURL {
            let candidate = resources.appendingPathComponent("Fixtures").appendingPathComponent(name).path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(name).path
    }

    /// The fixture's bytes, as captured.
    public static func load(_ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: path(name)))
    }

    /// A captured document as JSON: JSON files as they are, YAML ones (kubectl
    /// `-o yaml`) converted value for value (a `List` with kind/apiVersion per item).
    public static func json(_ name: String) throws -> Data {
        let data = try load(name)
        guard name.hasSuffix(".yaml") || name.hasSuffix(".yml") else { return data }
        guard let object = try Yams.load(yaml: String(decoding: data, as: UTF8.self)) else {
            throw KubeTestServerError("\(name): empty YAML document")
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes, .sortedKeys])
    }

    /// What tests need to know of one captured pod.
    public struct Pod: Sendable, Hashable {
        /// `metadata.uid`: the pod directory's name (the config hash for a static pod).
        public var uid: String
        public var name: String
        public var namespace: String
        public var nodeName: String?
        public var phase: String?
        /// `kubernetes.io/config.hash`, on static and mirror pods.
        public var configHash: String?
        /// `kubernetes.io/config.mirror`: set on mirror pods from the API server only.
        public var configMirror: String?
        /// `(volume name, volume type)` from `spec.volumes`, e.g. `("tmp-dir", "emptyDir")`.
        public var volumes: [Volume]

        public struct Volume: Sendable, Hashable {
            public var name: String
            public var type: String
        }

        /// A static pod as the kubelet lists it: its UID is its config hash.
        public var isStaticPod: Bool { configHash != nil && configHash == uid }
    }

    /// The pods of a captured document, in document order.
    public static func pods(in name: String) throws -> [Pod] {
        try PodStore.items(ofDocument: json(name)).map { item in
            let metadata = item["metadata"] as? [String: Any] ?? [:]
            let annotations = metadata["annotations"] as? [String: Any] ?? [:]
            let spec = item["spec"] as? [String: Any] ?? [:]
            let volumes = (spec["volumes"] as? [[String: Any]] ?? []).map { volume in
                Pod.Volume(
                    name: volume["name"] as? String ?? "",
                    type: volume.keys.filter { $0 != "name" }.sorted().first ?? ""
                )
            }
            return Pod(
                uid: metadata["uid"] as? String ?? "", name: metadata["name"] as? String ?? "",
                namespace: metadata["namespace"] as? String ?? "", nodeName: spec["nodeName"] as? String,
                phase: (item["status"] as? [String: Any])?["phase"] as? String,
                configHash: annotations["kubernetes.io/config.hash"] as? String,
                configMirror: annotations["kubernetes.io/config.mirror"] as? String,
                volumes: volumes
            )
        }
    }
}
