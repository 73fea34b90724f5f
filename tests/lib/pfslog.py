#!/usr/bin/env python3
"""The record layout of a pfshim log (include/pfshim/log_format.h), for tests that damage logs.

usage: pfslog.py cut LOG [MIN_OFFSET]
  cuts LOG in the middle of the first record that starts at MIN_OFFSET (default 1000) or
  later (the last record when none does) and prints the offset of the cut: a cut the
  reader must notice, wherever the clone's paths put the records.
"""
import struct
import sys


def records(data):
    """(offset, size) of each record, block by block: a block's records end at a zero type or
    at its end; the rest of the block is unused (zeros)."""
    hsize, bsize = struct.unpack_from("<II", data, 12)
    for start in range(0, len(data), bsize):
        off, end = start or hsize, min(start + bsize, len(data))
        while off + 8 <= end:
            typ, _, size = struct.unpack_from("<HHI", data, off)
            if typ == 0 or size < 8:
                break
            yield off, size
            off += size


def block_tails(data):
    """[lo, hi) of each block's unused tail, after its last record."""
    hsize, bsize = struct.unpack_from("<II", data, 12)
    ends = {}
    for off, size in records(data):
        ends[off // bsize] = off + size
    for start in range(0, len(data), bsize):
        yield ends.get(start // bsize, start or hsize), start + bsize


def cut(path, min_offset):
    data = open(path, "rb").read()
    recs = [r for r in records(data) if r[0] + r[1] <= len(data)]
    off, size = next((r for r in recs if r[0] >= min_offset), recs[-1])
    at = off + size // 2
    with open(path, "wb") as f:
        f.write(data[:at])
    print(at)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "cut":
        sys.exit(__doc__)
    cut(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000)
