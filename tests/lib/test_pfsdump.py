#!/usr/bin/env python3
"""tools/pfsdump.py on a log built here: fault addresses use the page size of the log's header."""
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def leb(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def log_with_faults(page_size):
    block = 16384
    header = struct.pack("<8sIIIIQ", b"PFSHIMLG", 1, 64, block, page_size, 42).ljust(64, b"\0")
    # two events: page 10 (write), then page 12 on thread 9
    ev = leb((10 << 1) << 4 | 1) + leb(0) + leb((2 << 1) << 4 | 4) + leb(5) + leb(9)
    body = struct.pack("<QIIII", 1000, 7, 2, len(ev), 0) + ev
    size = (8 + len(body) + 7) // 8 * 8
    rec = struct.pack("<HHI", 40, 0, size) + body.ljust(size - 8, b"\0")
    return (header + rec).ljust(block, b"\0")


def main():
    ok = True
    for ps in (4096, 16384):
        with tempfile.NamedTemporaryFile(suffix=".pfslog") as f:
            f.write(log_with_faults(ps))
            f.flush()
            out = subprocess.run([sys.executable, os.path.join(ROOT, "tools/pfsdump.py"), f.name],
                                 capture_output=True, text=True, check=True).stdout
        want = ["%#x w tid=7" % (10 * ps), "%#x r tid=9" % (12 * ps)]
        for w in want:
            if w not in out:
                print("page size %d: expected %r in:\n%s" % (ps, w, out))
                ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
