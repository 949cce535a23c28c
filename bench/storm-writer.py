#!/usr/bin/env python3
"""One writer of the event storm: for SECONDS seconds, in DIR, creates a file,
writes 4 KiB to it, reads it back (like cat: open, read, close) and deletes
it, over and over. Prints the number of files so handled.

usage: storm-writer.py DIR SECONDS
"""
import os
import sys
import time

def main():
    directory, seconds = sys.argv[1], float(sys.argv[2])
    payload = b"s" * 4096
    deadline = time.monotonic() + seconds
    count = 0
    while True:
        if count % 64 == 0 and time.monotonic() >= deadline:
            break
        path = os.path.join(directory, "storm-%d" % (count % 1024))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, payload)
        os.close(fd)
        fd = os.open(path, os.O_RDONLY)
        while os.read(fd, 65536):
            pass
        os.close(fd)
        os.unlink(path)
        count += 1
    print(count)

if __name__ == "__main__":
    main()
