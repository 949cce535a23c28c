#!/usr/bin/env python3
"""Benchmarks of the apiserver pod source (issue 8), driving the test API
server (`kube-test-server`, a separate process) and a real daemon
(`volume-reaper run --plan`, podSource.kind apiserver) on a generated node.

latency: ROUNDS MODIFIED events, one at a time, each flipping one of PODS
  pods' phase; t0 = when the server's write of the event to the daemon's
  watch socket completed (CLOCK_MONOTONIC, printed by the server), t1 = when
  the daemon's GET /v1/volumes/<uid> (polled every millisecond over one
  keep-alive connection) first shows the new phase. Prints p50/p99/max.
cost: PODS pods; the daemon and `kubectl get pods --watch -o json` watch the
  same server while it sends RATE MODIFIED events per second for SECONDS
  (each changes an annotation: the pod changes, its phase stays). Prints each
  process's CPU seconds over the stream and its peak RSS.

usage: pod-watch.py latency|cost BIN SERVER DIR [ROUNDS|SECONDS] [PODS] [RATE]
"""
import http.client
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time

def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]  # nearest rank

class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)

def get(connection, path):
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()

class Server:
    def __init__(self, binary, directory, pods):
        self.process = subprocess.Popen(
            [binary, "--dir", directory, "--node", "bench-node", "--pods", str(pods), "--bookmark-seconds", "30"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.url = None
        for line in self.process.stdout:
            if line.startswith("url "): self.url = line.split()[1]
            if line.strip() == "ready": break
        if not self.url: sys.exit("kube-test-server did not start")
    def send(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
    def expect(self, prefix):
        for line in self.process.stdout:
            if line.startswith(prefix): return line.split()
        sys.exit("kube-test-server ended before " + prefix)
    def quit(self):
        try:
            self.send("quit")
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()

def uid(index):
    return "00000000-0000-4000-8000-%012d" % index

def make_node(directory, pods):
    """One emptyDir volume with one file per pod, every time three hours old."""
    root = os.path.join(directory, "kubelet")
    stamp = time.time() - 3 * 3600
    for index in range(pods):
        volume = os.path.join(root, "pods", uid(index), "volumes", "kubernetes.io~empty-dir", "scratch")
        os.makedirs(volume)
        with open(os.path.join(volume, "data"), "w") as handle: handle.write("x\n")
        for path in (os.path.join(volume, "data"), volume):
            os.utime(path, (stamp, stamp))
    return root

def start_daemon(binary, directory, root, kubeconfig):
    policy = os.path.join(directory, "policy.yaml")
    with open("policies/default.yaml") as source, open(policy, "w") as target:
        target.write(source.read().replace("excludeNamespaces: [kube-system]", "excludeNamespaces: []"))
    config = os.path.join(directory, "config.yaml")
    with open(config, "w") as handle:
        handle.write("\n".join([
            "kubeletRoot: " + root, "policy: " + policy, "stateDir: " + os.path.join(directory, "state"),
            "socket: " + os.path.join(directory, "api.sock"), "reconcileInterval: 10m", "logTarget: stderr", "logLevel: warning",
            "podSource:", "  kind: apiserver", "  kubeconfig: " + kubeconfig, "",
        ]))
    log = open(os.path.join(directory, "daemon.log"), "w")
    daemon = subprocess.Popen([binary, "run", "--plan", "--config", config], stderr=log)
    socket_path = os.path.join(directory, "api.sock")
    for _ in range(600):
        try:
            connection = UnixConnection(socket_path)
            status, body = get(connection, "/healthz")
            if status == 200 and json.loads(body).get("podSource", {}).get("state") == "synced": return daemon, connection
        except OSError:
            pass
        time.sleep(0.1)
    daemon.kill()
    sys.exit("the daemon did not become healthy; see " + log.name)

def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def peak_rss_mib(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmHWM:"): return int(line.split()[1]) / 1024
    return 0.0

def latency(binary, server_binary, directory, rounds, pods):
    server = Server(server_binary, os.path.join(directory, "server"), pods)
    root = make_node(directory, pods)
    daemon, connection = start_daemon(binary, directory, root, os.path.join(directory, "server", "kubeconfig"))
    phases = {}
    delays = []
    try:
        for round_index in range(rounds):
            pod = uid(round_index % pods)
            phase = "Succeeded" if phases.get(pod, "Running") == "Running" else "Running"
            phases[pod] = phase
            server.send("modify %s %s" % (pod, phase))
            written = int(server.expect("written")[3])
            while True:
                status, body = get(connection, "/v1/volumes/" + pod)
                seen = time.monotonic_ns()
                if status == 200 and all(v.get("podPhase") == phase for v in json.loads(body)["volumes"]): break
                time.sleep(0.001)
            delays.append((seen - written) / 1e6)
    finally:
        daemon.terminate(); daemon.wait(timeout=30)
        server.quit()
    print("MODIFIED on the wire -> plan shows the phase, %d events over %d pods: p50 %.1f ms, p99 %.1f ms, max %.1f ms (goal p99 <= 100 ms)"
          % (len(delays), pods, percentile(delays, 0.5), percentile(delays, 0.99), max(delays)))

def cost(binary, server_binary, directory, seconds, pods, rate):
    kubectl = shutil.which("kubectl")
    if not kubectl: sys.exit("kubectl not found: apt-get install kubernetes-client")
    server = Server(server_binary, os.path.join(directory, "server"), pods)
    root = make_node(directory, pods)
    kubeconfig = os.path.join(directory, "server", "kubeconfig")
    daemon, connection = start_daemon(binary, directory, root, kubeconfig)
    watcher = subprocess.Popen(
        [kubectl, "--kubeconfig", kubeconfig, "get", "pods", "-A", "--watch", "-o", "json",
         "--field-selector", "spec.nodeName=bench-node"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(directory, "kubectl.log"), "w"))
    try:
        time.sleep(3)  # kubectl's discovery and first list
        if watcher.poll() is not None: sys.exit("kubectl ended early; see " + os.path.join(directory, "kubectl.log"))
        before = {"volume-reaper": cpu_seconds(daemon.pid), "kubectl": cpu_seconds(watcher.pid)}
        server.send("burst %d %d" % (seconds * rate, rate))
        server.expect("burst-done")
        time.sleep(1)  # the last events' work
        after = {"volume-reaper": cpu_seconds(daemon.pid), "kubectl": cpu_seconds(watcher.pid)}
        rss = {"volume-reaper": peak_rss_mib(daemon.pid), "kubectl": peak_rss_mib(watcher.pid)}
        # A new connection: the API closes one idle for 30 s.
        status, body = get(UnixConnection(os.path.join(directory, "api.sock")), "/healthz")
        events = json.loads(body)["podSource"]["events"]
        status, metrics = get(UnixConnection(os.path.join(directory, "api.sock")), "/metrics")
        cycles = [line for line in metrics.decode().splitlines()
                  if line.startswith("volume_reaper_reconcile_duration_seconds_count") or line.startswith("volume_reaper_reconcile_duration_seconds_sum")]
    finally:
        watcher.terminate(); watcher.wait(timeout=10)
        daemon.terminate(); daemon.wait(timeout=30)
        server.quit()
    print("watch of %d pods, %d events/s for %d s (the daemon received %d events; %s):" % (pods, rate, seconds, events, ", ".join(cycles)))
    for name in ("volume-reaper", "kubectl"):
        used = after[name] - before[name]
        print("  %-14s CPU %.2f s (%.1f%% of one core), peak RSS %.1f MiB" % (name, used, 100 * used / seconds, rss[name]))
    ratio = (after["volume-reaper"] - before["volume-reaper"]) / max(after["kubectl"] - before["kubectl"], 0.01)
    print("  CPU ratio volume-reaper / kubectl: %.2fx; RSS ratio %.2fx" % (ratio, rss["volume-reaper"] / max(rss["kubectl"], 0.1)))

def main():
    mode, binary, server_binary, directory = sys.argv[1:5]
    if mode == "latency":
        latency(binary, server_binary, directory, int(sys.argv[5]) if len(sys.argv) > 5 else 1000, int(sys.argv[6]) if len(sys.argv) > 6 else 50)
    else:
        cost(binary, server_binary, directory, int(sys.argv[5]) if len(sys.argv) > 5 else 60,
             int(sys.argv[6]) if len(sys.argv) > 6 else 1000, int(sys.argv[7]) if len(sys.argv) > 7 else 100)

main()
