#!/usr/bin/env python3
"""Runs a command and writes "WALL USER SYSTEM" seconds (to the microsecond,
from wait4's rusage) to OUT: /usr/bin/time prints only hundredths, too
coarse for runs of a fifth of a second.

usage: timed.py OUT COMMAND [ARG...]   (exits with the command's status)
"""
import os
import sys
import time

def main():
    out, command = sys.argv[1], sys.argv[2:]
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    with open(out, "w") as f:
        f.write("%.6f %.6f %.6f\n" % (wall, usage.ru_utime, usage.ru_stime))
    sys.exit(os.waitstatus_to_exitcode(status))

if __name__ == "__main__":
    main()
