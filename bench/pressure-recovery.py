#!/usr/bin/env python3
"""Benchmark (issue 11): seconds from crossing the disk pressure threshold to
free space back above it, on a 32 MiB kubelet root (root only; FS=tmpfs, or
FS=ext4 for an ext4 image on a loop device) holding
six finished Job pods' volumes (1.5 MiB each, idle 10 minutes, so idle.after
30m keeps them) and two running pods' volumes. The daemon runs first at ~80%
used; then a running pod writes a filler that leaves 8% free (the kubelet
config says evict at 10%, so pressure begins at 15%). Timed: from the end of
that write to statvfs showing >= 15% free. The same run under the policy
without a pressure section (idle.after alone) frees nothing: it is reported
as not recovered within the timeout. The daemon's reconcileInterval is long
(10m by default), so what answers the crossing is pressure.checkInterval (CHECK,
default 2s). Usage: pressure-recovery.py BIN [ROUNDS] [INTERVAL] [CHECK]"""
import json, os, subprocess, sys, tempfile, time, uuid, statistics

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
INTERVAL = sys.argv[3] if len(sys.argv) > 3 else "10m"
CHECK = sys.argv[4] if len(sys.argv) > 4 else "2s"
FS = os.environ.get("FS", "tmpfs")
TIMEOUT = 30.0
MiB = 1 << 20


def free_fraction(path):
    st = os.statvfs(path)
    return st.f_bavail / st.f_blocks


def build(directory):
    kubelet = os.path.join(directory, "kubelet")
    manifests = os.path.join(directory, "manifests")
    os.makedirs(kubelet)
    os.makedirs(manifests)
    if FS == "ext4":
        image = os.path.join(directory, "kubelet.ext4")
        with open(image, "wb") as f:
            f.truncate(32 * MiB)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", image], check=True, env={"PATH": "/usr/sbin:/sbin:/usr/bin:/bin"})
        subprocess.run(["mount", "-t", "ext4", "-o", "loop", image, kubelet], check=True)
    else:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={32 * MiB}", "tmpfs", kubelet], check=True)
    ten_minutes_ago = time.time() - 600
    finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ten_minutes_ago))
    items, running = [], []

    def volume(uid, size):
        path = f"{kubelet}/pods/{uid}/volumes/kubernetes.io~empty-dir/scratch"
        os.makedirs(path)
        with open(path + "/data", "wb") as f:
            f.write(b"Z" * size)
        return path

    for i in range(6):
        uid = str(uuid.uuid4())
        volume(uid, 1536 * 1024)
        items.append({"metadata": {"uid": uid, "name": f"job-{i}", "namespace": "batch", "ownerReferences": [{"kind": "Job", "name": f"job-{i}"}]},
                      "status": {"phase": "Succeeded", "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 0, "finishedAt": finished}}}]}})
    for i in range(2):
        uid = str(uuid.uuid4())
        running.append(volume(uid, MiB))
        items.append({"metadata": {"uid": uid, "name": f"web-{i}", "namespace": "apps"}, "status": {"phase": "Running"}})
    with open(os.path.join(manifests, "pods.json"), "w") as f:
        json.dump({"kind": "PodList", "apiVersion": "v1", "items": items}, f)
    for root, dirs, files in os.walk(os.path.join(kubelet, "pods")):
        for name in dirs + files:
            os.utime(os.path.join(root, name), (ten_minutes_ago, ten_minutes_ago))
    os.utime(os.path.join(manifests, "pods.json"), (time.time() - 30, time.time() - 30))
    with open(os.path.join(directory, "kubelet-config.yaml"), "w") as f:
        f.write('evictionHard:\n  nodefs.available: "10%"\n')
    return kubelet, manifests, running


def run(pressure):
    directory = tempfile.mkdtemp(prefix="volume-reaper-bench-pressure-")
    kubelet, manifests, running = build(directory)
    policy = os.path.join(directory, "policy.yaml")
    with open(policy, "w") as f:
        f.write("orphans:\n  confirmAfter: 0s\n" + (f"pressure:\n  idleAfter: 5m\n  checkInterval: {CHECK}\n" if pressure else ""))
    config = os.path.join(directory, "config.yaml")
    with open(config, "w") as f:
        f.write(f"kubeletRoot: {kubelet}\nkubeletConfig: {directory}/kubelet-config.yaml\nmanifests: {manifests}\npolicy: {policy}\n"
                f"stateDir: {directory}/state\nsocket: {directory}/api.sock\nreconcileInterval: {INTERVAL}\nlogTarget: stderr\n")
    log = open(os.path.join(directory, "daemon.log"), "w")
    daemon = subprocess.Popen([BIN, "run", "--config", config], stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while not os.path.exists(f"{directory}/api.sock") and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1)  # the first cycle: not in pressure yet
        st = os.statvfs(kubelet)
        filler = st.f_bavail * st.f_frsize - int(0.08 * st.f_blocks * st.f_frsize)
        with open(running[0] + "/filler", "wb") as f:
            f.write(b"F" * filler)
            f.flush()
            os.fsync(f.fileno())
        crossed = time.monotonic()
        assert free_fraction(kubelet) < 0.15
        while time.monotonic() - crossed < TIMEOUT:
            if free_fraction(kubelet) >= 0.15:
                return time.monotonic() - crossed, free_fraction(kubelet)
            time.sleep(0.02)
        return None, free_fraction(kubelet)
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
        subprocess.run(["umount", kubelet])
        subprocess.run(["rm", "-rf", directory])


if os.getuid() != 0:
    print("SKIP: needs root to mount a small filesystem as the kubelet root")
    sys.exit(0)
print(f"== pressure-recovery: 32 MiB {FS} filled to 92%, threshold 15% (kubelet 10% + 5 points), reconcileInterval {INTERVAL}, pressure.checkInterval {CHECK}, {ROUNDS} rounds")
times = []
for round in range(ROUNDS):
    seconds, free = run(pressure=True)
    baseline, baseline_free = run(pressure=False)
    shown = "not recovered" if baseline is None else f"{baseline:.2f}s"
    print(f"round {round + 1}: pressure mode {seconds:.2f}s to {free:.1%} free; idle.after alone: {shown} within {TIMEOUT:.0f}s ({baseline_free:.1%} free)"
          if seconds is not None else f"round {round + 1}: pressure mode NOT recovered within {TIMEOUT:.0f}s ({free:.1%} free)")
    if seconds is not None:
        times.append(seconds)
if times:
    print(f"median {statistics.median(times):.2f}s from crossing the threshold to free space back above it; idle.after alone: nothing freed, ratio unbounded")
sys.exit(0 if len(times) == ROUNDS else 1)
