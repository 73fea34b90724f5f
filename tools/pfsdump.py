#!/usr/bin/env python3
"""Dumps a pfshim log record by record: a debugging aid independent of the analyzer."""
import struct
import sys

NAMES = {1: "PROC_START", 2: "MODULE", 3: "MODULE_UNLOAD", 4: "STACK", 5: "ALLOC", 6: "FREE",
         7: "REMAP", 8: "MADVISE", 9: "COUNTERS", 10: "FORK", 11: "EXEC", 12: "PROC_END", 13: "MESSAGE", 14: "PYCODE", 15: "IMAGE", 32: "TOUCH", 33: "SCAN",
         34: "POLICY", 40: "FAULTS", 41: "UREG", 42: "CARVE"}


def leb(body, i):
    v = shift = 0
    while True:
        b = body[i]
        i += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def faults(body, page_size):
    """Exact mode's events (log_format.h): (page delta, flags), dt, [tid], [pc, syscall + 1]."""
    t, tid, count, nbytes = struct.unpack_from("<QIII", body)
    i, page, out = 24, 0, []
    for _ in range(count):
        v, i = leb(body, i)
        dt, i = leb(body, i)
        zz, flags = v >> 4, v & 0xf
        page += (zz >> 1) ^ -(zz & 1)
        t += dt
        if flags & 4:
            tid, i = leb(body, i)
        site = ""
        if flags & 8:
            pc, i = leb(body, i)
            sys1, i = leb(body, i)
            site = " pc=%#x sys=%d" % (pc, sys1 - 1)
        out.append("%#x%s%s tid=%d t=%d%s" % (page * page_size, " w" if flags & 1 else " r", " cow" if flags & 2 else "", tid, t, site))
    return "%d events, %d bytes: " % (count, nbytes) + "; ".join(out[:8]) + (" ..." if count > 8 else "")


def records(data):
    magic, version, hsize, bsize, psize, pid = struct.unpack_from("<8sIIIIQ", data, 0)
    assert magic == b"PFSHIMLG", "not a pfshim log"
    yield "HEADER", 0, dict(version=version, block=bsize, page=psize, pid=pid), b""
    off = hsize
    while off + 8 <= len(data):
        typ, flags, size = struct.unpack_from("<HHI", data, off)
        block_end = (off // bsize + 1) * bsize
        if typ == 0 or size < 8 or size % 8 or off + size > block_end:
            if typ != 0:
                yield "CORRUPT", off, dict(type=typ, size=size), b""
            off = block_end
            continue
        yield NAMES.get(typ, str(typ)), off, dict(flags=flags, size=size), data[off + 8:off + size]
        off += size


def main():
    data = open(sys.argv[1], "rb").read()
    page_size = 4096
    for name, off, info, body in records(data):
        extra = ""
        if name == "HEADER":
            page_size = info["page"]
        if name == "STACK":
            seq, sid, n = struct.unpack_from("<QII", body)
            # a Python frame (bit 63): py:CODE_ID:LINE
            extra = "id=%d frames=%s" % (sid, [("py:%d:%d" % (x >> 32 & 0x7fffffff, x & 0xffffffff)) if x >> 63 else hex(x)
                                              for x in struct.unpack_from("<%dQ" % n, body, 16)])
        elif name == "PYCODE":
            seq, cid, first, flen, nlen = struct.unpack_from("<QIIII", body)
            extra = "id=%d first_line=%d %s %s" % (cid, first, body[24:24 + flen].decode(errors="replace"),
                                                   body[24 + flen:24 + flen + nlen].decode(errors="replace"))
        elif name == "ALLOC":
            seq, t, addr, size, length, tid, stack, kind = struct.unpack_from("<QQQQQIIB", body)
            extra = "seq=%d addr=%#x size=%d stack=%d kind=%d" % (seq, addr, size, stack, kind)
        elif name == "COUNTERS":
            n, = struct.unpack_from("<I", body)
            slots = [struct.unpack_from("<IB3xQQ", body, 8 + 24 * i) for i in range(n)]
            extra = " ".join("s%d/k%d:%dx%dB" % s for s in slots if s[0])
        elif name == "MODULE":
            seq, base, start, end, mid, bl = struct.unpack_from("<QQQQIB", body)
            plen, = struct.unpack_from("<I", body, 60)
            extra = "id=%d base=%#x %s" % (mid, base, body[64:64 + plen].decode(errors="replace"))
        elif name == "PROC_START":
            pid, ppid, root = struct.unpack_from("<QQQ", body)
            extra = "pid=%d ppid=%d root=%d" % (pid, ppid, root)
        elif name == "TOUCH":
            t, seq, stack, pages, kind = struct.unpack_from("<QQIIB", body)
            extra = "t=%d alloc_seq=%d stack=%d kind=%d pages=%d" % (t, seq, stack, kind, pages)
        elif name == "SCAN":
            t, dur, new, regions, reason = struct.unpack_from("<QQQII", body)
            extra = "t=%d dur=%dns new=%d regions=%d reason=%d" % (t, dur, new, regions, reason)
        elif name == "FAULTS":
            extra = faults(body, page_size)
        elif name == "UREG":
            t, addr, length, seq, result, present = struct.unpack_from("<QQQQiI", body)
            extra = "addr=%#x len=%d alloc_seq=%d result=%d present=%d" % (addr, length, seq, result, present)
        elif name == "CARVE":
            seq, t, addr, length, stack, kind = struct.unpack_from("<QQQQIB", body)
            extra = "seq=%d addr=%#x len=%d stack=%d kind=%d" % (seq, addr, length, stack, kind)
        elif name == "POLICY":
            seq, t, dur, pre, stack, tid, acts, rule, kind = struct.unpack_from("<QQQQIIHBB", body)
            res = struct.unpack_from("<8h", body, 44)
            rlen, = struct.unpack_from("<I", body, 60)
            extra = "alloc_seq=%d stack=%d kind=%d rule=%d actions=%#x results=%s prefaulted=%d dur=%dns '%s'" % (
                seq, stack, kind, rule, acts, list(res), pre, dur, body[64:64 + rlen].decode(errors="replace"))
        elif name in ("PROC_END", "FORK", "MESSAGE", "EXEC", "FREE"):
            extra = body[:40].hex()
        print("%8d %-12s %s %s" % (off, name, info, extra))


if __name__ == "__main__":
    main()
