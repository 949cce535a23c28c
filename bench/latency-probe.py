#!/usr/bin/env python3
"""Latency probe for bench/watch-latency: ROUNDS times, touches a file in one
of the VOLUMES (alternately a write, appending a line, and a read-only cat:
open, read, close), at t0, then polls the access store (the `volume` table of
DB, read through Python's sqlite3 module every millisecond) until the
volume's lastAccess >= t0; records the delay. Between rounds it sleeps a
random time in [0, GAP) so the accesses fall at random phases of the flush
timer. Prints one line per kind and for all: count, p50, p99, max in ms.

usage: latency-probe.py DB ROUNDS GAP_SECONDS VOLUME...
"""
import math
import os
import random
import sqlite3
import sys
import time

def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]  # nearest rank

def main():
    db, rounds, gap, volumes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    connection = sqlite3.connect("file:%s?mode=ro" % db, uri=True, isolation_level=None)
    delays = {"write": [], "cat": []}
    for i in range(rounds):
        volume = volumes[i % len(volumes)]
        kind = "write" if i % 2 == 0 else "cat"
        target = os.path.join(volume, "f0")
        time.sleep(random.uniform(0, gap))
        t0 = time.time()
        if kind == "write":
            with open(target, "a") as out:
                out.write("x\n")
        else:
            with open(target, "rb") as source:
                source.read()
        deadline = t0 + 60
        while True:
            row = connection.execute("SELECT lastAccess, source FROM volume WHERE path = ?", (volume,)).fetchone()
            if row and row[0] is not None and row[0] >= t0:
                delays[kind].append((time.time() - t0) * 1000)
                break
            if time.time() > deadline:
                sys.exit("round %d: %s in %s not in the store after 60 s (row %r)" % (i, kind, volume, row))
            time.sleep(0.001)
    delays["all"] = delays["write"] + delays["cat"]
    for kind in ("write", "cat", "all"):
        values = delays[kind]
        print("%-5s n=%d p50=%.1fms p99=%.1fms max=%.1fms" % (
            kind, len(values), percentile(values, 0.50), percentile(values, 0.99), max(values)))

if __name__ == "__main__":
    main()
