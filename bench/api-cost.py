#!/usr/bin/env python3
"""What volume-reaper agents cost the API server (issue 20).

Real daemons (`volume-reaper run --plan`, podSource.kind apiserver, one per
node name) against the test API server (`kube-test-server`, a process that
records every request with its arrival time on CLOCK_MONOTONIC and counts the
bytes it writes: response heads, bodies, watch lines; not TLS framing).

Clock acceleration (×60), and only this: the server's BOOKMARK period (the
watch cache sends one about every minute: here every second, and one 2 s
before each watch's timeout, as the cache does), the agents' watchTimeout
(300 s: here 5 s, so watches of 5 to 9 s) and bookmarkTimeout (300 s: here
5 s). A 60 s run is then an hour of watches and bookmarks, and its counts
are the per-node-hour counts. Nothing else is scaled: the pods (PODS, 30, as
150k pods over 5,000 nodes), their size, the requests' shape.

The outage is not accelerated that way: the backoff's first step (0.8 s) is a
constant. A 10-minute outage with maxBackoff 30 s is 20 maxBackoff periods;
here maxBackoff is 4 s and the outage 80 s, also 20 periods.

usage: api-cost.py VOLUME_REAPER KUBE_TEST_SERVER DIR [FLEET]
"""
import json
import os
import statistics
import subprocess
import sys
import time

ACCELERATION = 60
PODS = 30
NODE = "bench-node"


class Server:
    def __init__(self, binary, directory, *flags):
        self.process = subprocess.Popen(
            [binary, "--dir", directory, "--node", NODE, "--pods", str(PODS), "--bookmark-seconds", "1",
             "--bookmark-before-timeout"] + list(flags),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.kubeconfig = None
        for line in self.process.stdout:
            if line.startswith("kubeconfig "): self.kubeconfig = line.split()[1]
            if line.strip() == "ready": break
        if not self.kubeconfig: sys.exit("kube-test-server did not start")

    def send(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def stats(self):
        self.send("stats")
        for line in self.process.stdout:
            if line.startswith("stats "):
                return {k: int(v) for k, v in (word.split("=") for word in line.split()[1:])}
        sys.exit("kube-test-server ended")

    def requests(self):
        """Every request so far: (kind, status, uptime ns, query dict)."""
        self.send("requests")
        found = []
        for line in self.process.stdout:
            if line.strip() == "requests-end": return found
            if line.startswith("request "):
                _, kind, status, ns, query = line.split(" ", 4)
                pairs = dict(item.split("=", 1) for item in query.strip().split("&") if "=" in item)
                found.append((kind, int(status), int(ns), pairs))
        sys.exit("kube-test-server ended")

    def quit(self):
        try:
            self.send("quit")
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()


def node_of(request):
    return request[3].get("fieldSelector", "").replace("spec.nodeName=", "")


def kind_of(request):
    """list, stream (a streaming list: WATCH with sendInitialEvents) or watch."""
    kind, _, _, query = request
    if kind == "watch" and query.get("sendInitialEvents") == "true": return "stream"
    return kind


def tally(requests):
    counts = {"list": 0, "stream": 0, "watch": 0}
    for request in requests:
        counts[kind_of(request)] = counts.get(kind_of(request), 0) + 1
    return counts


class Daemon:
    def __init__(self, binary, directory, kubeconfig, node, pods, **settings):
        os.makedirs(os.path.join(directory, "kubelet", "pods"), exist_ok=True)
        for index in range(pods):
            volume = os.path.join(directory, "kubelet", "pods", "00000000-0000-4000-8000-%012d" % index, "volumes",
                                  "kubernetes.io~empty-dir", "scratch")
            os.makedirs(volume, exist_ok=True)
        config = os.path.join(directory, "config.yaml")
        with open(config, "w") as handle:
            handle.write("\n".join([
                "kubeletRoot: " + os.path.join(directory, "kubelet"), "stateDir: " + os.path.join(directory, "state"),
                "socket: " + os.path.join(directory, "api.sock"), "reconcileInterval: 10m", "logTarget: stderr",
                "logLevel: notice", "podSource:", "  kind: apiserver", "  kubeconfig: " + kubeconfig, "  nodeName: " + node,
            ] + ["  %s: %s" % item for item in settings.items()] + [""]))
        self.log = os.path.join(directory, "daemon.log")
        self.process = subprocess.Popen([binary, "run", "--plan", "--config", config], stderr=open(self.log, "w"))

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wait_for(condition, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition(): return True
        time.sleep(0.1)
    return False


def open_watch(server, node):
    """A watch of `node` that is open now: the last request for it is a watch answered 200."""
    mine = [r for r in server.requests() if node_of(r) == node]
    return bool(mine) and mine[-1][0] == "watch" and mine[-1][1] == 200 and server.stats()["open"] >= 1


ACCELERATED = {"watchTimeout": "5s", "bookmarkTimeout": "5s", "maxBackoff": "4s", "startupSpread": "0s"}


def steady(binary, server_binary, directory, watch_list):
    """One node, one hour of healthy watches (×60)."""
    flags = [] if watch_list else ["--no-watch-list"]
    server = Server(server_binary, os.path.join(directory, "server"), *flags)
    daemon = Daemon(binary, os.path.join(directory, "daemon"), server.kubeconfig, NODE, PODS, **ACCELERATED)
    try:
        if not wait_for(lambda: open_watch(server, NODE)): sys.exit("no watch; see " + daemon.log)
        start_requests = tally(server.requests())
        start_bytes = server.stats()["bytes"]
        time.sleep(3600 / ACCELERATION)
        requests = server.requests()
        stats = server.stats()
        hour = tally(requests)
        for key in hour: hour[key] -= start_requests.get(key, 0)
        return {"start": start_requests, "start_bytes": start_bytes, "hour": hour, "hour_bytes": stats["bytes"] - start_bytes,
                "server": server, "daemon": daemon}
    except BaseException:
        daemon.stop(); server.quit()
        raise


def cuts(server, daemon):
    """Watch cuts (between lines, mid-line, a restart that kept the history), then a restart with a compacted history."""
    results = []
    for command in ["drop line", "drop mid", "restart", "drop line", "drop mid", "restart"]:
        before = tally(server.requests())
        watches = before["watch"]
        server.send(command)
        if not wait_for(lambda: tally(server.requests())["watch"] > watches and open_watch(server, NODE), 30):
            sys.exit("no watch after " + command + "; see " + daemon.log)
        time.sleep(1)
        after = tally(server.requests())
        results.append((command, after["list"] + after["stream"] - before["list"] - before["stream"]))
    compacted = []
    for _ in range(3):
        before = tally(server.requests())
        server.send("restart-compacted")
        if not wait_for(lambda: tally(server.requests())["list"] + tally(server.requests())["stream"] > before["list"] + before["stream"]
                        and open_watch(server, NODE), 30):
            sys.exit("no relist after restart-compacted; see " + daemon.log)
        time.sleep(2)
        after = tally(server.requests())
        compacted.append(after["list"] + after["stream"] - before["list"] - before["stream"])
    return results, compacted


def outage(server, daemon, periods=20, max_backoff=4.0):
    """The server down for `periods` maxBackoffs: every connection closed at once."""
    before = server.stats()
    lists_before = tally(server.requests())
    down = time.monotonic()
    server.send("down")
    time.sleep(periods * max_backoff)
    during = server.stats()["refused"] - before["refused"]
    server.send("up")
    up = time.monotonic()
    if not wait_for(lambda: open_watch(server, NODE), 60): sys.exit("no watch after the outage; see " + daemon.log)
    back = time.monotonic() - up
    after = tally(server.requests())
    relists = after["list"] + after["stream"] - lists_before["list"] - lists_before["stream"]
    return {"attempts": during, "seconds": up - down, "back": back, "relists": relists}


def fleet(binary, server_binary, directory, count, spread=10.0, max_backoff=4.0):
    """`count` agents started in the same second, then an outage they all come back from."""
    server = Server(server_binary, os.path.join(directory, "fleet-server"))
    started = time.monotonic_ns()
    daemons = [Daemon(binary, os.path.join(directory, "fleet-%d" % index), server.kubeconfig, "fleet-%d" % index, 0,
                      watchTimeout="5s", bookmarkTimeout="5s", maxBackoff="%gs" % max_backoff, startupSpread="%gs" % spread)
               for index in range(count)]
    try:
        nodes = {"fleet-%d" % index for index in range(count)}
        if not wait_for(lambda: nodes <= {node_of(r) for r in server.requests()}, spread + 30): sys.exit("not every agent asked")
        first = {}
        for request in server.requests():
            first.setdefault(node_of(request), request[2])
        offsets = sorted((ns - started) / 1e9 for node, ns in first.items() if node in nodes)
        time.sleep(3)
        # Down for 10 maxBackoffs: every agent reaches its cap, then back.
        server.send("down")
        time.sleep(10 * max_backoff)
        count_before = len(server.requests())
        up = time.monotonic_ns()
        server.send("up")
        wait_for(lambda: nodes <= {node_of(r) for r in server.requests()[count_before:]}, 4 * max_backoff)
        back = {}
        for request in server.requests()[count_before:]:
            back.setdefault(node_of(request), request[2])
        returns = sorted((ns - up) / 1e9 for node, ns in back.items() if node in nodes)
        return offsets, returns
    finally:
        for daemon in daemons: daemon.stop()
        server.quit()


def busiest_second(offsets):
    return max((sum(1 for o in offsets if start <= o < start + 1) for start in [x / 10 for x in range(0, 400)]), default=0)


def main():
    binary, server_binary, directory = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 10

    print("clock acceleration x%d: watchTimeout 5s (300s), BOOKMARK every 1s (60s) and 2s before each watch's end, "
          "bookmarkTimeout 5s (300s); %d pods on the node; one run of %ds is one node-hour" % (ACCELERATION, PODS, 3600 // ACCELERATION))
    figures = {}
    for watch_list in (True, False):
        label = "WatchList" if watch_list else "LIST fallback (server refuses WatchList)"
        run = steady(binary, server_binary, os.path.join(directory, "steady-%s" % ("wl" if watch_list else "list")), watch_list)
        server, daemon = run["server"], run["daemon"]
        try:
            hour, start = run["hour"], run["start"]
            print("steady state, %s:" % label)
            print("  start: %d LIST, %d streaming list, %d WATCH, %d bytes (includes the %d pods once)"
                  % (start["list"], start["stream"], start["watch"], run["start_bytes"], PODS))
            print("  per node-hour after it: %d LIST, %d streaming list, %d WATCH, %d bytes (%.1f bytes/s)"
                  % (hour["list"], hour["stream"], hour["watch"], run["hour_bytes"], run["hour_bytes"] / 3600))
            print("  goal: 0 LISTs per node-hour beyond the first: %s" % ("met" if hour["list"] + hour["stream"] == 0 else "MISSED"))
            figures[watch_list] = run
            if watch_list:
                results, compacted = cuts(server, daemon)
                print("watch cuts (WatchList server, history kept): " + ", ".join("%s: %d LIST" % r for r in results))
                print("  goal: none when the watch can resume: %s" % ("met" if all(r[1] == 0 for r in results) else "MISSED"))
                print("server restarts with a compacted history (410 on the resumed watch): LISTs per restart %s"
                      % ", ".join(str(c) for c in compacted))
                print("  goal: at most one LIST per cut: %s" % ("met" if all(c <= 1 for c in compacted) else "MISSED"))
                result = outage(server, daemon)
                per_period = result["attempts"] / (result["seconds"] / 4.0)
                print("outage of %.0fs = 20 maxBackoff periods (maxBackoff 4s; 10 min at 30s): %d connection attempts, "
                      "%.2f per maxBackoff (the first 3 are the 0.8 s, 1.6 s, 3.2 s ramp); back %.1fs after the server, %d LIST after it"
                      % (result["seconds"], result["attempts"], per_period, result["back"], result["relists"]))
                steady_attempts = result["attempts"] - 3
                print("  goal: at most one request per node per maxBackoff after the ramp: %d in %d periods: %s"
                      % (steady_attempts, 20, "met" if steady_attempts <= 20 else "MISSED"))
                figures["outage"] = result
        finally:
            daemon.stop()
            server.quit()

    offsets, returns = fleet(binary, server_binary, directory, count)
    print("fleet of %d agents started in the same second, startupSpread 10s: first requests at %s s"
          % (count, " ".join("%.1f" % o for o in offsets)))
    print("  spread %.1f s (window 10 s), median %.1f s, busiest second %d of %d requests"
          % (offsets[-1] - offsets[0], statistics.median(offsets), busiest_second(offsets), count))
    print("same fleet back from a 40 s outage (maxBackoff 4s): first requests %s s after the server came back"
          % " ".join("%.1f" % r for r in returns))
    if returns:
        print("  spread %.1f s, busiest second %d of %d requests" % (returns[-1] - returns[0], busiest_second(returns), len(returns)))

    # The per-node figures, extrapolated to 5,000 nodes and 150k pods.
    nodes = 5000
    wl, ls = figures[True], figures[False]
    print("extrapolated to %d nodes, 150k pods (30 per node), steady state:" % nodes)
    for name, run in (("volume-reaper, WatchList", wl), ("volume-reaper, LIST fallback", ls)):
        per_hour = run["hour"]
        print("  %-30s LIST/s %.3f  open watches %d  WATCH requests/s %.2f  bytes/s %.0f"
              % (name, nodes * (per_hour["list"] + per_hour["stream"]) / 3600, nodes, nodes * per_hour["watch"] / 3600,
                 nodes * run["hour_bytes"] / 3600))
    print("  %-30s LIST/s %.3f  (5m resync relisted every node: %d pods' bytes each time)"
          % ("before (relist every 5m)", nodes / 300, PODS))


main()
