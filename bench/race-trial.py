#!/usr/bin/env python3
"""One trial of a removal race of issue 13, run by bench/reap-races inside a
private mount and PID namespace (so volume-reaper is PID 1's mount namespace
peer there, unmounts, and nothing it mounts leaks out).

usage: race-trial.py HOLE BIN POLICY WORKDIR
Prints one JSON line: what the reaper reported and what actually happened.
"""
import ctypes
import json
import os
import random
import subprocess
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
AT_FDCWD = -100
IN_CLOSE_NOWRITE = 0x10


def inotify_names(buffer):
    """The names of the inotify records in `buffer`."""
    offset = 0
    while offset + 16 <= len(buffer):
        length = int.from_bytes(buffer[offset + 12:offset + 16], "little")
        yield buffer[offset + 16:offset + 16 + length].rstrip(b"\0")
        offset += 16 + length


def sh(command):
    subprocess.run(command, shell=True, check=True)


def make_node(work, files, dirs):
    sh(f"python3 {os.path.dirname(__file__)}/make-bench-node.py {work} 1 1 {files} {dirs}")
    return os.path.join(work, "kubelet/pods/be000000-0000-4000-8000-000000000000/volumes/kubernetes.io~empty-dir/vol-0")


def run_once(binary, policy, work):
    result = subprocess.run(
        [binary, "--once", "--json", "--kubelet-root", work + "/kubelet", "--manifests", work + "/manifests",
         "--policy", policy, "--state-dir", work + "/state", "--log-target", "stderr"],
        capture_output=True, text=True)
    try:
        summary = json.loads(result.stdout)
        volume = next(v for v in summary["volumes"] if v["path"].endswith("/vol-0"))
        return volume["action"], volume["filesRemoved"], ",".join(volume["reasons"])
    except Exception:
        return "no-json(status %d)" % result.returncode, 0, result.stderr.strip().splitlines()[-1:] and result.stderr.strip().splitlines()[-1] or ""


def wait_for_removal(paths, timeout=30):
    """Until one of `paths` is gone: the removal has begun."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not all(os.path.lexists(p) for p in paths):
            return True
        time.sleep(0.0005)
    return False


def hole1(binary, policy, work):
    volume = make_node(work, 200, 2)
    outside = os.path.join(work, "outside")
    old = time.time() - 3 * 3600
    sh(f"mkdir -p {volume}/a/mnt {outside}/mnt && mount -t tmpfs -o size=1m tmpfs {volume}/a/mnt"
       f" && mount -t tmpfs -o size=1m tmpfs {outside}/mnt && echo precious > {outside}/mnt/data"
       f" && ln -s {outside} {volume}/alink"
       f" && touch -h -d @{int(old)} {volume}/a/mnt {volume}/a {volume}/alink {volume}")
    # The racer strikes right after the last check's scan: it watches the
    # volume and swaps a and alink when `a` is closed the second time (the
    # plan's scan opens it once, the last check once), then puts the
    # volume's mtime back so nothing looks changed.
    inotify = libc.inotify_init()
    libc.inotify_add_watch(inotify, volume.encode(), IN_CLOSE_NOWRITE)
    pid = os.fork()
    if pid == 0:
        a, alink = (volume + "/a").encode(), (volume + "/alink").encode()
        closes = 0
        while closes < 2:
            for name in inotify_names(os.read(inotify, 4096)):
                if name == b"a":
                    closes += 1
        libc.renameat2(AT_FDCWD, a, AT_FDCWD, alink, RENAME_EXCHANGE)
        os.utime(volume, (old, old))
        os._exit(0)
    os.close(inotify)
    try:
        action, removed, reasons = run_once(binary, policy, work)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    # Nothing of the outside may be touched, whatever the outcome.
    mounted = subprocess.run(["mountpoint", "-q", outside + "/mnt"]).returncode == 0
    intact = mounted and open(outside + "/mnt/data").read() == "precious\n"
    return {"action": action, "reasons": reasons, "outside_unmounted": not mounted, "outside_intact": intact}


def hole7(binary, policy, work):
    volume = make_node(work, 20000, 10)
    sentinels = [f"{volume}/d{d}/f{f}" for d in range(10) for f in (0, 999, 1999)]
    everything = [f"{volume}/d{d}/f{f}" for d in range(10) for f in range(2000)]
    pipe_read, pipe_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        # The writer: once the removal has begun, appends to every file still
        # there, in random order, and says which appends succeeded.
        os.close(pipe_read)
        written, opened_after = [], []
        if wait_for_removal(sentinels):
            random.shuffle(everything)
            deadline = time.time() + 2
            for path in everything:
                if time.time() > deadline:
                    break
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                except OSError:
                    continue
                if os.fstat(fd).st_nlink == 0:
                    # The open waited for the reaper's lease and got a file
                    # already unlinked: no write of ours could land in it.
                    os.close(fd)
                    opened_after.append(path)
                    continue
                os.write(fd, b"written during the reap\n")
                os.close(fd)
                written.append(path)
        os.write(pipe_write, json.dumps([written, opened_after]).encode())
        os._exit(0)
    os.close(pipe_write)
    action, removed, reasons = run_once(binary, policy, work)
    data = b""
    while True:
        chunk = os.read(pipe_read, 1 << 20)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    written, opened_after = json.loads(data or b"[[], []]")
    lost = [p for p in written if not os.path.lexists(p)]
    return {"action": action, "reasons": reasons, "files_removed": removed, "written": len(written),
            "written_then_deleted": len(lost), "opened_after_deletion": len(opened_after)}


def hole9(binary, policy, work):
    volume = make_node(work, 20000, 10)
    outside = os.path.join(work, "outside/source")
    sh(f"mkdir -p {outside} && for i in $(seq 1 50); do echo live > {outside}/f$i; done")
    sentinels = [f"{volume}/d{d}/f{f}" for d in range(10) for f in (0, 999, 1999)]
    pid = os.fork()
    if pid == 0:
        # A bind mount lands on every subdirectory still there once the removal has begun.
        if wait_for_removal(sentinels):
            for d in range(10):
                subprocess.run(["mount", "--bind", outside, f"{volume}/d{d}"], stderr=subprocess.DEVNULL)
        os._exit(0)
    action, removed, reasons = run_once(binary, policy, work)
    os.waitpid(pid, 0)
    for d in range(10):
        subprocess.run(["umount", f"{volume}/d{d}"], stderr=subprocess.DEVNULL)
    remaining = int(subprocess.run(f"find {volume} 2>/dev/null | wc -l", shell=True, capture_output=True, text=True).stdout or 0)
    # The tree held 20,000 files, 10 directories and the volume root.
    actually_removed = 20011 - remaining
    intact = len(os.listdir(outside)) == 50
    return {"action": action, "reasons": reasons, "files_removed": removed, "actually_removed": actually_removed, "outside_intact": intact}


def main():
    hole, binary, policy, work = sys.argv[1:5]
    result = {"1": hole1, "7": hole7, "9": hole9}[hole](binary, policy, work)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
