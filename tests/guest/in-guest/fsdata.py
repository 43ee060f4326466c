#!/usr/bin/env python3
"""Test data for the guest filesystem tests: files of mixed sizes whose SHA-256 is taken from the data stream as
it is written (not read back), listed in sha256sum format so that `sha256sum -c LIST` verifies every byte.

  fsdata.py write DIR PREFIX COUNT MIB LIST        COUNT files, MIB MiB in all, sizes mixed 4 KiB .. 8 MiB
  fsdata.py stream DIR PREFIX LIST [MAX]           write files until killed (or MAX files), sync after each;
                                                   a file is listed only after the sync that made it durable

One process does all of it: under TCG every exec costs 0.1-0.3 s, so a shell loop of head/tee/sha256sum would
spend more time starting processes than writing.
"""
import ctypes
import hashlib
import os
import random
import sys

# Relative weights of the sizes: many small files, some large ones, as a source tree plus a few images would be.
SIZES = [4096, 12288, 65536, 200_000, 1 << 20, 3 << 20, 8 << 20]
WEIGHTS = [6, 5, 4, 3, 2, 1, 1]


def write_file(path, size, rng):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = rng.randbytes(min(left, 1 << 20))
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


_libc = ctypes.CDLL(None, use_errno=True)


def syncfs(directory):
    """syncfs(2) of the file system holding directory; unlike sync(2) it reports a failed writeback."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    finally:
        os.close(fd)


def append_line(list_path, line):
    with open(list_path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def sizes_for(count, total, rng):
    sizes = rng.choices(SIZES, WEIGHTS, k=count)
    scale = total / max(1, sum(sizes))
    return [max(512, int(s * scale) // 512 * 512 + rng.randrange(0, 512)) for s in sizes]


def main(argv):
    mode = argv[1]
    rng = random.Random(int.from_bytes(os.urandom(8), "little"))
    if mode == "write":
        d, prefix, count, mib, list_path = argv[2], argv[3], int(argv[4]), float(argv[5]), argv[6]
        lines = []
        for i, size in enumerate(sizes_for(count, mib * (1 << 20), rng)):
            path = os.path.join(d, f"{prefix}{i:04d}")
            lines.append(f"{write_file(path, size, rng)}  {path}")
        with open(list_path, "a") as f:
            f.write("\n".join(lines) + "\n")
        return 0
    if mode == "stream":
        d, prefix, list_path = argv[2], argv[3], argv[4]
        limit = int(argv[5]) if len(argv) > 5 else 1 << 30
        for i in range(limit):
            path = os.path.join(d, f"{prefix}{i:05d}")
            digest = write_file(path, rng.choice(SIZES[:5]), rng)
            syncfs(d)
            append_line(list_path, f"{digest}  {path}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
