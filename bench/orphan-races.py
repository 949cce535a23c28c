#!/usr/bin/env python3
"""The two manifest races of issue 13, run for real against `volume-reaper --once`.

hole 2 ("rewritten"): 13 pods; 1-12 listed Succeeded, 13 an orphan (confirmed
by two earlier runs on two different writes). `--once` reaps the 12, most idle
first, then the orphan. Right after the first deletion a racer writes the
manifests again (atomically: temp file, rename) with pod 13 Running. Every
trial in which pod 13's volume still existed once that write landed must keep
it: a reap there is wrong.

hole 3 ("truncated"): 8 Running pods and their idle volumes, listed in a
kind-first `kind: List` YAML that an in-place writer (truncate, write part,
pause, write the rest) keeps rewriting while `--once` runs; then the writer
"crashes", leaving the file cut at an item boundary, and `--once` runs twice
more, further apart than confirmAfter. Every reaped volume of a running pod
is wrong. The state directory persists across trials, as under a timer.

usage: orphan-races.py BIN WORKDIR TRIALS
prints one line per trial and the counts.
"""
import json
import os
import random
import subprocess
import sys
import threading
import time

BIN, WORK, TRIALS = sys.argv[1], sys.argv[2], int(sys.argv[3])
ONLY = sys.argv[4] if len(sys.argv) > 4 else "both"
SETTLE = 2.0          # ManifestReader.defaultSettleTime
CONFIRM = 1.0         # orphans.confirmAfter in the bench policy


def uid(n):
    return "5e1f0000-0000-4000-8000-%012d" % n


def policy(path):
    with open("policies/default.yaml") as f:
        text = f.read()
    assert "  confirmAfter: 2m\n" in text and "  maxOrphanFraction: 0.5\n" in text
    # No circuit breaker: it would hide a wrong orphan verdict, which is what is counted here.
    text = text.replace("  confirmAfter: 2m\n", "  confirmAfter: 1s\n").replace("  maxOrphanFraction: 0.5\n", "  maxOrphanFraction: 1\n")
    with open(path, "w") as f:
        f.write(text)


def make_volume(root, n, files, age):
    vol = volume(root, n)
    os.makedirs(vol)
    for i in range(files):
        with open(os.path.join(vol, "f%d" % i), "wb") as f:
            f.write(b"x" * 64)
    stamp = time.time() - age
    for entry in [vol] + [os.path.join(vol, name) for name in os.listdir(vol)]:
        os.utime(entry, (stamp, stamp))


def volume(root, n):
    return os.path.join(root, "kubelet/pods", uid(n), "volumes/kubernetes.io~empty-dir/data")


def once(node, node_policy):
    # An empty kubelet pod cgroup tree: without one every orphan is kept (liveness-unknown).
    os.makedirs(node + "/cgroup/kubepods.slice", exist_ok=True)
    return subprocess.run(
        [BIN, "--once", "--kubelet-root", node + "/kubelet", "--manifests", node + "/manifests", "--cgroup-root", node + "/cgroup",
         "--policy", node_policy, "--state-dir", node + "/state", "--log-target", "stderr"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_settled(path):
    while time.time() - os.stat(path).st_ctime < SETTLE + 0.05:
        time.sleep(0.05)


# ---------------------------------------------------------------- hole 2

def pod_json(n, phase):
    return {"kind": "Pod", "metadata": {"name": "pod-%d" % n, "namespace": "batch", "uid": uid(n)},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "c", "state": {"terminated": {"finishedAt": "2020-01-01T00:00:00Z"}}}]}}


def write_atomically(manifests, pods):
    tmp = os.path.join(manifests, ".pods.json.tmp")
    with open(tmp, "w") as f:
        json.dump({"kind": "List", "items": pods}, f)
        f.write("\n")
    os.rename(tmp, os.path.join(manifests, "pods.json"))


def rewritten_trial(trial, node_policy):
    node = os.path.join(WORK, "rewritten-%d" % trial)
    manifests = node + "/manifests"
    os.makedirs(manifests)
    for n in range(1, 14):
        # Pod 13 is the least idle: the reaper comes to it last.
        make_volume(node, n, 300, 2 * 3600 if n == 13 else 3 * 3600)
    time.sleep(0.05)  # manifests strictly newer than every pod directory
    # Two earlier writes without pod 13, seen by two runs CONFIRM apart:
    # the first lists 1-12 Running (nothing reaped), the second Succeeded.
    write_atomically(manifests, [pod_json(n, "Running") for n in range(1, 13)])
    wait_settled(manifests + "/pods.json")
    once(node, node_policy)
    time.sleep(CONFIRM + 0.1)
    finished = [pod_json(n, "Succeeded") for n in range(1, 13)]
    write_atomically(manifests, finished)
    wait_settled(manifests + "/pods.json")

    landed_before = []

    def racer():
        first = [volume(node, n) for n in range(1, 13)]
        deadline = time.time() + 30
        while time.time() < deadline and all(os.path.exists(v) for v in first):
            pass
        write_atomically(manifests, finished + [pod_json(13, "Running")])
        landed_before.append(os.path.exists(volume(node, 13)))

    thread = threading.Thread(target=racer)
    thread.start()
    result = once(node, node_policy)
    thread.join()
    valid = bool(landed_before and landed_before[0])
    reaped = not os.path.exists(volume(node, 13))
    others = sum(not os.path.exists(volume(node, n)) for n in range(1, 13))
    subprocess.run(["rm", "-rf", node])
    return valid, valid and reaped, others, result.returncode


# ---------------------------------------------------------------- hole 3

RUNNING = list(range(1, 9))


def list_yaml(numbers):
    text = "kind: List\napiVersion: v1\nitems:\n"
    for n in numbers:
        text += ("- kind: Pod\n  metadata:\n    name: web-%d\n    namespace: shop\n    uid: %s\n"
                 "  status:\n    phase: Running\n") % (n, uid(n))
    return text


class InPlaceWriter(threading.Thread):
    """Truncates and rewrites the file in place, in two parts with a pause."""

    def __init__(self, path):
        super().__init__()
        self.path, self.stop = path, threading.Event()

    def run(self):
        text = list_yaml(RUNNING).encode()
        while not self.stop.is_set():
            cut = random.randrange(1, len(text))
            with open(self.path, "r+b") as f:
                f.truncate(0)
                f.write(text[:cut])
                f.flush()
                os.fsync(f.fileno())
                time.sleep(random.uniform(0, 0.3))
                f.write(text[cut:])
            self.stop.wait(random.uniform(0, 2.5))


def truncated_trial(trial, node, node_policy):
    path = node + "/manifests/pods.yaml"
    writer = InPlaceWriter(path)
    writer.start()
    for _ in range(3):
        once(node, node_policy)
        time.sleep(random.uniform(0, 1))
    writer.stop.set()
    writer.join()
    # The writer dies mid-write: the file ends at an item boundary (or mid-uid) and stays so.
    text = list_yaml(RUNNING)
    if random.random() < 0.5:
        starts = [i for i in range(len(text)) if text.startswith("- kind: Pod", i)]
        cut = random.choice(starts[1:])  # at least one pod left: a snapshot that lists some
    else:
        cut = text.index(uid(random.choice(RUNNING))) + random.randrange(1, 30)
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(text[:cut].encode())
    wait_settled(path)
    once(node, node_policy)
    time.sleep(CONFIRM + 0.2)
    once(node, node_policy)
    # Restarted, the writer writes whole files again, and a timer run sees one.
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(text.encode())
    wait_settled(path)
    once(node, node_policy)
    return [n for n in RUNNING if not os.path.exists(volume(node, n))]


def main():
    os.makedirs(WORK, exist_ok=True)
    node_policy = os.path.join(WORK, "policy.yaml")
    policy(node_policy)

    valid_total = wrong_total = 0
    for trial in range(1, TRIALS + 1 if ONLY in ("both", "rewritten") else 1):
        valid, wrong, others, status = rewritten_trial(trial, node_policy)
        valid_total += valid
        wrong_total += wrong
        print("hole 2 trial %2d: rewrite landed before the orphan's deletion: %-5s  orphan reaped wrongly: %-5s  "
              "terminated volumes reaped: %d/12  exit %d" % (trial, valid, wrong, others, status), flush=True)
    print("hole 2 (manifests rewritten after the first of 13 deletions): %d trials, %d with the rewrite in time, "
          "wrongly reaped volumes: %d" % (TRIALS, valid_total, wrong_total), flush=True)

    if ONLY not in ("both", "truncated"):
        return
    node = os.path.join(WORK, "truncated")
    os.makedirs(node + "/manifests")
    for n in RUNNING:
        make_volume(node, n, 20, 3 * 3600)
    # A real orphan, which confirmation must still let go.
    make_volume(node, 99, 20, 3 * 3600)
    time.sleep(0.05)
    with open(node + "/manifests/pods.yaml", "w") as f:
        f.write(list_yaml(RUNNING))
    wrong_total = 0
    for trial in range(1, TRIALS + 1):
        lost = truncated_trial(trial, node, node_policy)
        wrong_total += len(lost)
        print("hole 3 trial %2d: running pods' volumes reaped: %d %s" % (trial, len(lost), lost), flush=True)
    print("hole 3 (in-place writer truncating the YAML while --once runs, then a cut file left stable): "
          "%d trials, wrongly reaped volumes: %d (the real orphan was reaped: %s)"
          % (TRIALS, wrong_total, not os.path.exists(volume(node, 99))), flush=True)


main()
