#!/usr/bin/env python3
"""Writes a PodList as `kubectl get pods -o json` prints it (4-space indent,
kind: List), with full specs, managedFields, init and regular containers.

usage: make-pod-list.py PODS OUT [--kubelet]

--kubelet writes the kubelet's /pods form instead: compact JSON, a PodList
whose items have no kind or apiVersion.

Each pod follows the shape of real captured documents: the spec and status
fields of kubectl-neat's test/fixtures/pod1-raw.json (a real `kubectl get pod
-o json` from minikube), and the managedFields, projected service-account
volume and container status fields a current API server (1.27+) adds, as in
the kubelet /pods fixture in Tests/PodManifestsTests/Fixtures.swift. About
21 KB a pod, as in the issue's 250 pods in 5.3 MB.
"""
import json
import sys
import uuid


def env(count, prefix):
    return [{"name": f"{prefix}_SETTING_{i}", "value": f"value-{i}-" + "x" * (i % 17)} for i in range(count)]


def container(name, index, terminated_at):
    return {
        "args": ["--config=/etc/app/config.yaml", f"--shard={index}", "--log-format=json", "--metrics-port=9090"],
        "command": ["/usr/local/bin/" + name],
        "env": env(4, name.upper().replace("-", "_"))
        + [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
           {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
        "image": f"registry.example.com/platform/{name}:v1.{index % 9}.3",
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": {"failureThreshold": 3, "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                          "initialDelaySeconds": 10, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1},
        "name": name,
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"},
                  {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
        "readinessProbe": {"failureThreshold": 3, "httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
                           "periodSeconds": 5, "successThreshold": 1, "timeoutSeconds": 1},
        "resources": {"limits": {"cpu": "2", "memory": "2Gi"}, "requests": {"cpu": "250m", "memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True, "runAsNonRoot": True, "runAsUser": 10001},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "volumeMounts": [
            {"mountPath": "/scratch", "name": "scratch"},
            {"mountPath": "/etc/app", "name": "config", "readOnly": True},
            {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access-7q2xd",
             "readOnly": True},
        ],
    }


def status(name, index, finished):
    return {
        "containerID": f"containerd://{uuid.uuid5(uuid.NAMESPACE_OID, name + str(index)).hex}{'0' * 32}",
        "image": f"registry.example.com/platform/{name}:v1.{index % 9}.3",
        "imageID": f"registry.example.com/platform/{name}@sha256:{uuid.uuid5(uuid.NAMESPACE_DNS, name).hex * 2}",
        "lastState": {},
        "name": name,
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"terminated": {
            "containerID": f"containerd://{uuid.uuid5(uuid.NAMESPACE_URL, name + str(index)).hex}{'0' * 32}",
            "exitCode": 0, "finishedAt": finished, "reason": "Completed", "startedAt": "2026-11-29T05:00:02Z"}},
    }


def managed_fields(containers):
    spec_containers = {f'k:{{"name":"{c}"}}': {
        ".": {}, "f:args": {}, "f:command": {}, "f:env": {".": {}, 'k:{"name":"POD_NAME"}': {".": {}, "f:name": {}, "f:valueFrom": {}}},
        "f:image": {}, "f:imagePullPolicy": {}, "f:livenessProbe": {".": {}, "f:failureThreshold": {}},
        "f:name": {}, "f:ports": {".": {}, 'k:{"containerPort":8080,"protocol":"TCP"}': {".": {}, "f:name": {}}},
        "f:resources": {".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}}},
        "f:volumeMounts": {".": {}, 'k:{"mountPath":"/scratch"}': {".": {}, "f:mountPath": {}, "f:name": {}}},
    } for c in containers}
    return [
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {
            "f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                           "f:ownerReferences": {".": {}, 'k:{"uid":"5d1c"}': {}}},
            "f:spec": {"f:containers": spec_containers, "f:restartPolicy": {}, "f:volumes": {".": {}}}},
         "manager": "kube-controller-manager", "operation": "Update", "time": "2026-11-29T05:00:00Z"},
        {"apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {
            "f:conditions": {'k:{"type":"ContainersReady"}': {".": {}, "f:lastProbeTime": {}, "f:status": {}},
                             'k:{"type":"Initialized"}': {".": {}, "f:status": {}}},
            "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:startTime": {}}},
         "manager": "kubelet", "operation": "Update", "subresource": "status", "time": "2026-11-29T06:00:00Z"},
    ]


def pod(index, uid):
    name = f"batch-{index // 10}-{index % 10}-x7k2p"
    containers = ["worker", "uploader", "metrics-agent"][: 1 + index % 3 // 2]
    finished = f"2026-11-29T05:{index % 60:02d}:00Z"
    phase = ["Succeeded", "Running", "Failed", "Succeeded"][index % 4]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": {"kubernetes.io/config.seen": "2026-11-29T05:00:00.123456789Z",
                            "kubernetes.io/config.source": "api",
                            "prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            "creationTimestamp": "2026-11-29T05:00:00Z",
            "generateName": name[:-5],
            "labels": {"app": "batch", "pod-template-hash": "6d9f7c8b5", "team": "data-platform"},
            "managedFields": managed_fields(containers),
            "name": name,
            "namespace": f"team-{index % 7}",
            "ownerReferences": [{"apiVersion": "batch/v1", "blockOwnerDeletion": True, "controller": True,
                                 "kind": "Job", "name": name[:-6], "uid": "5d1c"}],
            "resourceVersion": str(918273 + index),
            "uid": uid,
        },
        "spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "node-pool", "operator": "In", "values": ["batch", "general"]}]}]}}},
            "containers": [container(c, index, finished) for c in containers],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "initContainers": [container("fetch-inputs", index, finished)],
            "nodeName": "node-7",
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Never",
            "schedulerName": "default-scheduler",
            "securityContext": {"fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "tolerationSeconds": 300}],
            "volumes": [
                {"emptyDir": {"sizeLimit": "10Gi"}, "name": "scratch"},
                {"configMap": {"defaultMode": 420, "name": "batch-config"}, "name": "config"},
                {"name": "kube-api-access-7q2xd", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                    {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                                "path": "namespace"}]}}]}},
            ],
        },
        "status": {
            "conditions": [{"lastProbeTime": None, "lastTransitionTime": "2026-11-29T05:00:00Z", "status": "True",
                            "type": t} for t in ["PodReadyToStartContainers", "Initialized", "Ready",
                                                 "ContainersReady", "PodScheduled"]],
            "containerStatuses": [status(c, index, finished) for c in containers],
            "hostIP": "10.0.0.7",
            "hostIPs": [{"ip": "10.0.0.7"}],
            "initContainerStatuses": [status("fetch-inputs", index, "2026-11-29T05:00:01Z")],
            "phase": phase,
            "podIP": f"10.244.{index // 250 % 250}.{index % 250}",
            "podIPs": [{"ip": f"10.244.{index // 250 % 250}.{index % 250}"}],
            "qosClass": "Burstable",
            "startTime": "2026-11-29T05:00:00Z",
        },
    }


def main():
    count, out = int(sys.argv[1]), sys.argv[2]
    kubelet = "--kubelet" in sys.argv[3:]
    with open(out, "w") as f:
        # Written pod by pod: a 10,000-pod list must not need its whole tree in memory here either.
        if kubelet:
            f.write('{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[')
        else:
            f.write('{\n    "apiVersion": "v1",\n    "items": [\n')
        for i in range(count):
            item = pod(i, str(uuid.UUID(int=(0x5eed << 64) + i, version=4)))
            if kubelet:
                del item["kind"], item["apiVersion"]
                f.write(("," if i else "") + json.dumps(item, separators=(",", ":")))
            else:
                text = json.dumps(item, indent=4)
                f.write("        " + text.replace("\n", "\n        ") + (",\n" if i + 1 < count else "\n"))
        if kubelet:
            f.write("]}\n")
        else:
            f.write('    ],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n')


if __name__ == "__main__":
    main()
