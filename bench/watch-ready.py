#!/usr/bin/env python3
"""Starts a watcher, times it to readiness, samples its peak RSS, stops it.

usage: watch-ready.py (--notify SOCKET | --stderr-line TEXT) [--log-line TEXT]
                      [--log FILE] [--settle SECONDS] [--timeout SECONDS] -- CMD...

--notify SOCKET      bind an AF_UNIX datagram socket at SOCKET, pass it as
                     NOTIFY_SOCKET, ready when a datagram holds READY=1
--stderr-line TEXT   ready when a line of the command's stderr contains TEXT
--log-line TEXT      also report when a stderr line containing TEXT arrived
                     (and its seconds=... field, if any)
--log FILE           copy the command's stderr there
--settle SECONDS     wait this long after readiness before sampling VmHWM
--peak-after TEXT    and sample it only once a stderr line containing TEXT
                     arrived (the work after readiness that the peak must
                     include, such as the daemon's first plan)
--metrics SOCKET     before stopping, read the daemon's /metrics on the API
                     socket SOCKET (curl) and report the reconciles' total
                     duration (volume_reaper_reconcile_duration_seconds_sum)

Prints one line of key=value pairs: ready_s, logline_s, logline_seconds,
reconcile_s, vmhwm_kb, exit (the command's exit status after SIGTERM).
"""
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time


def vmhwm_kb(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def main():
    args = sys.argv[1:]
    notify = stderr_line = log_line = log_file = metrics = peak_after = None
    settle, timeout = 1.0, 300.0
    while args and args[0] != "--":
        flag, value, args = args[0], args[1], args[2:]
        if flag == "--notify":
            notify = value
        elif flag == "--stderr-line":
            stderr_line = value
        elif flag == "--log-line":
            log_line = value
        elif flag == "--log":
            log_file = value
        elif flag == "--metrics":
            metrics = value
        elif flag == "--peak-after":
            peak_after = value
        elif flag == "--settle":
            settle = float(value)
        elif flag == "--timeout":
            timeout = float(value)
        else:
            sys.exit("unknown option " + flag)
    command = args[1:]
    if not command or (notify is None) == (stderr_line is None):
        sys.exit(__doc__)

    env = dict(os.environ)
    receiver = None
    if notify:
        if os.path.exists(notify):
            os.unlink(notify)
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(notify)
        env["NOTIFY_SOCKET"] = notify

    ready = threading.Event()
    peak_work_done = threading.Event()
    marks = {}
    log = open(log_file, "w") if log_file else None

    def die_with_parent():  # the command gets SIGKILL if this helper dies
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    start = time.monotonic()
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, preexec_fn=die_with_parent)

    def stop(signum, frame):
        process.kill()
        os._exit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def read_stderr():
        for raw in process.stderr:
            now = time.monotonic()
            line = raw.decode(errors="replace")
            if log:
                log.write(line)
            if log_line and "logline" not in marks and log_line in line:
                marks["logline"] = now - start
                found = re.search(r"\bseconds=([0-9.]+)", line)
                if found:
                    marks["logline_seconds"] = float(found.group(1))
            if peak_after and peak_after in line:
                peak_work_done.set()
            if stderr_line and not ready.is_set() and stderr_line in line:
                marks["ready"] = now - start
                ready.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()

    if receiver:
        receiver.settimeout(0.2)
        deadline = start + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                message = receiver.recv(65536)
            except socket.timeout:
                continue
            if b"READY=1" in message.split(b"\n"):
                marks["ready"] = time.monotonic() - start
                ready.set()
                break
    else:
        ready.wait(timeout)

    if not ready.is_set():
        process.kill()
        process.wait()
        sys.exit("not ready after %.0fs (exit status %s): %s" % (timeout, process.returncode, " ".join(command)))
    time.sleep(settle)
    if peak_after and not peak_work_done.wait(timeout):
        process.kill()
        process.wait()
        sys.exit("no stderr line with %r after %.0fs: %s" % (peak_after, timeout, " ".join(command)))
    hwm = vmhwm_kb(process.pid)
    reconcile = "nan"
    if metrics:
        text = subprocess.run(["curl", "-sf", "--unix-socket", metrics, "http://localhost/metrics"],
                              capture_output=True, text=True).stdout
        for line in text.splitlines():
            if line.startswith("volume_reaper_reconcile_duration_seconds_sum "):
                reconcile = "%.3f" % float(line.split()[1])
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        status = process.wait()
    reader.join(5)
    if log:
        log.close()
    # inotifywait dies of SIGTERM (-15); the daemon should exit 0.
    print("ready_s=%.3f logline_s=%s logline_seconds=%s reconcile_s=%s vmhwm_kb=%d exit=%d" % (
        marks["ready"],
        "%.3f" % marks["logline"] if "logline" in marks else "nan",
        "%.3f" % marks["logline_seconds"] if "logline_seconds" in marks else "nan",
        reconcile, hwm, status))


if __name__ == "__main__":
    main()
