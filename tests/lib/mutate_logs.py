#!/usr/bin/env python3
"""Runs the real `pfshim report` on mutated copies of pfshim logs.

usage: mutate_logs.py PFSHIM WORKDIR N LOG...

For each LOG, N truncations, N flipped bytes and N insertions of random
bytes, deterministic (seeded by the log's contents).  Each mutant is
reported in json; every run must end by exit (0 or 1), never by a signal
or a hang, and:
- exit 1 must come with a message naming the file, and the offset unless
  the whole file was refused (bad header, not a log);
- a cut inside a record must be noticed: exit 1 with its offset (or the
  file refused, for a cut header);
- a cut between records, or in a block's unused zero tail, cannot always be
  noticed (the format has no record count: blocks of other threads may
  follow): the report must still be read, exit 0 or 1.
Prints the counts; exit 1 with the failing cases listed.
"""
import concurrent.futures
import json
import os
import random
import re
import subprocess
import sys

from pfslog import block_tails, records

FILE_LEVEL = re.compile(r"not a pfshim log|truncated: \d+ bytes|bad (log format version|block size|header size)"
                        r"|log format version \d+ is newer")


def run(pfshim, path):
    try:
        p = subprocess.run([pfshim, "report", "--format", "json", path], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None, b"", "timeout"
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def clean_cuts(data):
    """Offsets where a cut leaves whole records: record starts and blocks' zero tails, as [lo, hi) ranges."""
    return [(off, off + 1) for off, _ in records(data)] + list(block_tails(data))


def check(pfshim, path, kind, data, clean):
    rc, out, err = run(pfshim, path)
    if rc is None:
        return "hung"
    if rc < 0:
        return "killed by signal %d" % -rc
    if rc not in (0, 1):
        return "exit status %d" % rc
    name = re.escape(path)
    with_offset = re.search(r"pfshim: %s: offset \d+: " % name, err)
    refused = re.search(r"pfshim: %s: " % name, err) and FILE_LEVEL.search(err)
    if rc == 1 and not with_offset and not refused:
        return "exit 1 without a message naming the file and offset: %r" % err[:300]
    if rc == 0 or out:
        try:
            json.loads(out)
        except ValueError as e:
            return "the report is not JSON (%s)" % e
    if kind == "cut" and not any(lo <= len(data) < hi for lo, hi in clean):
        if not (rc == 1 and (with_offset or refused)):
            return "a cut inside a record, at %d, went unnoticed (exit %d)" % (len(data), rc)
    return None


def mutants(log, n):
    """(kind, data) for n truncations, n flips, n insertions of `log`, seeded by its bytes."""
    orig = open(log, "rb").read()
    rnd = random.Random(orig)
    clean = clean_cuts(orig)
    for kind in ("cut", "flip", "insert"):
        for i in range(n):
            if kind == "cut":
                data = orig[:rnd.randrange(0, len(orig))]
            elif kind == "flip":
                b = bytearray(orig)
                for _ in range(rnd.choice((1, 1, 2, 8))):
                    pos = rnd.randrange(len(b))
                    b[pos] ^= 1 << rnd.randrange(8) if rnd.random() < 0.7 else rnd.randrange(1, 256)
                data = bytes(b)
            else:
                pos = rnd.randrange(len(orig))
                data = orig[:pos] + bytes(rnd.randrange(256) for _ in range(rnd.choice((1, 3, 8, 40)))) + orig[pos:]
            yield kind, i, data, clean


def main():
    pfshim, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    jobs, counts = [], {"cut": 0, "flip": 0, "insert": 0}
    for log in sys.argv[4:]:
        base = os.path.join(work, os.path.basename(log))
        for kind, i, data, clean in mutants(log, n):
            path = "%s.%s%d.pfslog" % (base, kind, i)
            with open(path, "wb") as f:
                f.write(data)
            jobs.append((path, kind, data, clean))
            counts[kind] += 1

    def one(job):
        path, kind, data, clean = job
        why = check(pfshim, path, kind, data, clean)
        if not why:
            os.unlink(path)
        return "%s: %s" % (path, why) if why else None

    # two at a time: the machine's two cores; each run is a separate process
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        failures = [f for f in ex.map(one, jobs) if f]
    print("mutants: %s; failures: %d" % (", ".join("%d %s" % (v, k) for k, v in counts.items()),
                                        len(failures)))
    for f in failures[:20]:
        print("  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
