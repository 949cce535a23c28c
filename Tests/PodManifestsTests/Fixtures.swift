/// Manifests as the kubelet and kubectl write them.
enum Fixtures {
    /// The kubelet's `/pods` endpoint: a `v1.PodList` with full specs.
    static let kubeletPods = #"""
    {
      "kind": "PodList",
      "apiVersion": "v1",
      "metadata": {},
      "items": [
        {
          "metadata": {
            "name": "backup-28915200-x7k2p",
            "generateName": "backup-28915200-",
            "namespace": "batch",
            "uid": "0b6f4c4e-8a51-4c55-9f7e-2f0c6a3d9e11",
            "resourceVersion": "918273",
            "creationTimestamp": "2026-11-29T06:00:00Z",
            "labels": {"batch.kubernetes.io/job-name": "backup-28915200", "controller-uid": "5d1c"},
            "annotations": {
              "kubernetes.io/config.seen": "2026-11-29T06:00:01.123456789Z",
              "kubernetes.io/config.source": "api",
              "volume.alpha.kubernetes.io/last-accessed-at": "2026-11-29T06:40:00Z"
            },
            "ownerReferences": [
              {"apiVersion": "batch/v1", "kind": "Job", "name": "backup-28915200", "uid": "5d1c", "controller": true, "blockOwnerDeletion": true}
            ],
            "finalizers": ["batch.kubernetes.io/job-tracking"]
          },
          "spec": {
            "volumes": [
              {"name": "scratch", "emptyDir": {}},
              {"name": "kube-api-access-9xq2m", "projected": {"sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}], "defaultMode": 420}}
            ],
            "initContainers": [
              {"name": "fetch", "image": "busybox:1.36", "command": ["sh", "-c", "wget -O /scratch/in http://example/in"], "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}
            ],
            "containers": [
              {"name": "backup", "image": "registry.example/backup:2.4", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}, "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
              {"name": "uploader", "image": "registry.example/uploader:1.0"}
            ],
            "restartPolicy": "Never",
            "nodeName": "node-7",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
          },
          "status": {
            "phase": "Succeeded",
            "conditions": [{"type": "Ready", "status": "False", "lastProbeTime": null, "lastTransitionTime": "2026-11-29T06:45:10Z", "reason": "PodCompleted"}],
            "hostIP": "10.0.0.7",
            "podIP": "10.244.3.18",
            "startTime": "2026-11-29T06:00:00Z",
            "initContainerStatuses": [
              {"name": "fetch", "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-11-29T06:00:02Z", "finishedAt": "2026-11-29T06:05:00Z", "containerID": "containerd://aa"}}, "lastState": {}, "ready": true, "restartCount": 0, "image": "busybox:1.36", "imageID": "sha256:1", "started": false}
            ],
            "containerStatuses": [
              {"name": "backup", "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-11-29T06:05:01Z", "finishedAt": "2026-11-29T06:45:09Z", "containerID": "containerd://bb"}}, "lastState": {}, "ready": false, "restartCount": 0, "image": "registry.example/backup:2.4", "imageID": "sha256:2", "started": false},
              {"name": "uploader", "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-11-29T06:05:01Z", "finishedAt": "2026-11-29T06:30:00Z", "containerID": "containerd://cc"}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-29T07:59:59Z"}}, "ready": false, "restartCount": 1, "image": "registry.example/uploader:1.0", "imageID": "sha256:3", "started": false}
            ],
            "qosClass": "Burstable"
          }
        },
        {
          "metadata": {
            "name": "web-6d9f7c8b5-2lq4z",
            "namespace": "shop",
            "uid": "7c2e1f0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
            "annotations": {"volume-reaper.io/keep": "true"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-6d9f7c8b5", "uid": "9e", "controller": true}]
          },
          "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], "nodeName": "node-7"},
          "status": {
            "phase": "Running",
            "containerStatuses": [
              {"name": "web", "state": {"running": {"startedAt": "2026-11-28T10:00:00Z"}}, "lastState": {"terminated": {"exitCode": 137, "finishedAt": "2026-11-28T09:59:00Z"}}, "ready": true, "restartCount": 1}
            ]
          }
        },
        {
          "metadata": {
            "name": "fluent-bit-8kqvx",
            "namespace": "logging",
            "uid": "e4d3c2b1-a098-4765-8321-fedcba987654",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluent-bit", "uid": "d5", "controller": true}]
          },
          "spec": {"containers": [{"name": "fluent-bit", "image": "fluent/fluent-bit:3.1"}]},
          "status": {"phase": "Running", "containerStatuses": [{"name": "fluent-bit", "state": {"running": {"startedAt": "2026-11-01T00:00:00Z"}}, "ready": true, "restartCount": 0}]}
        },
        {
          "kind": "Pod",
          "apiVersion": "v1",
          "metadata": {
            "name": "kube-apiserver-node-7",
            "namespace": "kube-system",
            "uid": "4c9a2b7d1e8f3a6b5c0d9e8f7a6b5c4d",
            "annotations": {
              "kubernetes.io/config.hash": "4c9a2b7d1e8f3a6b5c0d9e8f7a6b5c4d",
              "kubernetes.io/config.mirror": "4c9a2b7d1e8f3a6b5c0d9e8f7a6b5c4d",
              "kubernetes.io/config.source": "file"
            },
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-7", "uid": "n7", "controller": true}]
          },
          "spec": {"containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.31.0"}], "hostNetwork": true, "priorityClassName": "system-node-critical"},
          "status": {"phase": "Running"}
        },
        {
          "metadata": {
            "name": "migrate-xz81k",
            "uid": "a1b2c3d4-e5f6-4789-abcd-ef0123456789",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "migrate", "uid": "j2"}]
          },
          "spec": {"containers": [{"name": "migrate", "image": "migrate:1"}]},
          "status": {
            "phase": "Failed",
            "containerStatuses": [
              {"name": "migrate", "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "startedAt": null, "finishedAt": null}}}
            ]
          }
        }
      ]
    }
    """#

    /// `kubectl get pods --field-selector spec.nodeName=node-7 -o json`.
    static let kubectlList = #"""
    {
        "apiVersion": "v1",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "creationTimestamp": "2026-11-29T05:00:00Z",
                    "name": "report-1",
                    "namespace": "analytics",
                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "report", "uid": "r1"}],
                    "uid": "11111111-2222-4333-8444-555555555555"
                },
                "spec": {"containers": [{"name": "report", "image": "report:3"}]},
                "status": {
                    "phase": "Succeeded",
                    "containerStatuses": [
                        {"name": "report", "state": {"terminated": {"exitCode": 0, "finishedAt": "2026-11-29T05:10:00Z", "reason": "Completed", "startedAt": "2026-11-29T05:00:05Z"}}}
                    ]
                }
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "api-0",
                    "namespace": "shop",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "api", "uid": "s1"}],
                    "uid": "66666666-7777-4888-9999-aaaaaaaaaaaa"
                },
                "spec": {"containers": [{"name": "api", "image": "api:7"}]},
                "status": {"phase": "Pending"}
            }
        ],
        "kind": "List",
        "metadata": {
            "resourceVersion": ""
        }
    }
    """#
}
