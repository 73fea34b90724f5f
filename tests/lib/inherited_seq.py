#!/usr/bin/env python3
"""A forked child names an inherited block by its parent's seq.

usage: inherited_seq.py LOGDIR SIZE

Reads the logs of a run (tools/pfsdump.py's records): for every ALLOC a
forked child wrote with PFS_ALLOC_INHERITED for a block of SIZE bytes, its
parent's log must hold the ALLOC of that block (same address and size)
under the same seq; the child's records that name the block's site by seq
(fast mode's TOUCH, exact mode's UREG on userfaultfd) name that seq.  At
least one such block must be found.
Prints what differs and exits 1 otherwise.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import pfsdump  # noqa: E402

ALLOC_INHERITED = 0x1


def read(path):
    allocs, named, pid = [], {}, None
    for name, _, info, body in pfsdump.records(open(path, "rb").read()):
        if name == "HEADER":
            pid = info["pid"]
        elif name == "ALLOC":
            seq, _, addr, size, _, _, stack = struct.unpack_from("<QQQQQII", body)
            allocs.append((addr, size, seq, info["flags"] & ALLOC_INHERITED, stack))
        elif name == "TOUCH":  # by site: the seqs it names
            _, seq, stack = struct.unpack_from("<QQI", body)
            named.setdefault(stack, set()).add(seq)
        elif name == "UREG":  # by address
            _, addr, _, seq = struct.unpack_from("<QQQQ", body)
            named.setdefault(("at", addr), set()).add(seq)
    return pid, allocs, named


def main():
    logdir, size = sys.argv[1], int(sys.argv[2])
    logs = [read(os.path.join(logdir, f)) for f in sorted(os.listdir(logdir)) if f.endswith(".pfslog")]
    own = {}
    for pid, allocs, _ in logs:
        for addr, sz, seq, inherited, _ in allocs:
            if not inherited and sz == size:
                own[(addr, sz)] = (pid, seq)
    found, bad = 0, []
    for pid, allocs, named in logs:
        for addr, sz, seq, inherited, stack in allocs:
            if not inherited or sz != size:
                continue
            found += 1
            parent = own.get((addr, sz))
            if not parent or parent[1] != seq:
                bad.append("process %d: inherited block %#x of %d bytes under seq %d, its parent's %s"
                           % (pid, addr, sz, seq, "seq %d (process %d)" % (parent[1], parent[0]) if parent else "ALLOC missing"))
            else:
                for key in (stack, ("at", addr)):
                    if key in named and seq not in named[key]:
                        bad.append("process %d: its records of the inherited block %#x name seqs %s, not %d"
                                   % (pid, addr, sorted(named[key]), seq))
    if not found:
        bad.append("no forked child's inherited block of %d bytes in %s" % (size, logdir))
    for b in bad:
        print("  " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
