#!/usr/bin/env python3
"""Builds a synthetic kubelet tree for the benchmarks: PODS pods x VOLUMES
emptyDir volumes x FILES files each (spread over DIRS subdirectories), all
idle for hours, with a kubelet /pods manifest listing every pod as Succeeded.

usage: make-bench-node.py DIR PODS VOLUMES FILES [DIRS]
"""
import json
import os
import sys
import time

def main():
    root, pods, volumes, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    dirs = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    old = time.time() - 3 * 3600
    items = []
    finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(old))
    payload = b"x" * 100
    for p in range(pods):
        uid = "be000000-0000-4000-8000-%012d" % p
        items.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "bench-%d" % p, "namespace": "bench", "uid": uid,
                         "ownerReferences": [{"kind": "Job", "name": "bench"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "main", "state": {"terminated": {"exitCode": 0, "finishedAt": finished}}}]},
        })
        for v in range(volumes):
            vol = os.path.join(root, "kubelet/pods", uid, "volumes/kubernetes.io~empty-dir", "vol-%d" % v)
            for d in range(dirs):
                sub = os.path.join(vol, "d%d" % d) if dirs > 1 else vol
                os.makedirs(sub, exist_ok=True)
                for f in range(files // dirs):
                    path = os.path.join(sub, "f%d" % f)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
                    os.write(fd, payload)
                    os.close(fd)
                    os.utime(path, (old, old))
                os.utime(sub, (old, old))
            os.utime(vol, (old, old))
    manifests = os.path.join(root, "manifests")
    os.makedirs(manifests, exist_ok=True)
    with open(os.path.join(manifests, "pods.json"), "w") as out:
        json.dump({"kind": "PodList", "apiVersion": "v1", "items": items}, out)

if __name__ == "__main__":
    main()
