#!/usr/bin/env python3
"""Binds an AF_UNIX datagram socket at SOCKET (for NOTIFY_SOCKET) and exits 0
when a datagram holds READY=1, 1 after TIMEOUT seconds. Removes the socket on
exit, so later notifications from the daemon are dropped.

usage: notify-wait.py SOCKET [TIMEOUT]
"""
import os
import socket
import sys
import time

def main():
    path = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 300.0
    if os.path.exists(path):
        os.unlink(path)
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(0.2)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                message = receiver.recv(65536)
            except socket.timeout:
                continue
            if b"READY=1" in message.split(b"\n"):
                return 0
        return 1
    finally:
        os.unlink(path)

if __name__ == "__main__":
    sys.exit(main())
