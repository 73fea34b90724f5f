"""The address ranges pfshim's logs name: each image's logged allocations, for the fault oracle.

Only what has an ALLOC or REMAP record has an address here: anonymous and file mappings,
and heap blocks of at least a page (smaller blocks are counted per site, not logged).  Read
with pfsdump's record walker; times are CLOCK_MONOTONIC, like `perf record -k CLOCK_MONOTONIC`.
"""
import bisect
import glob
import os
import struct

import pfsdump

PAGE = 4096
SMALL_PAGES = 16          # blocks up to this many pages are indexed per page
GRANULE = 512             # larger ones per 2 MiB granule
KINDS = {1: "malloc", 2: "calloc", 3: "realloc", 4: "aligned", 5: "mmap", 6: "mmap-file", 7: "brk",
         8: "stack", 9: "thread-stack", 10: "data", 11: "unhooked", 12: "pre-start", 13: "pfshim", 14: "shared"}
CATEGORY = 0x2  # ALLOC flag: memory accounted by kind, no allocation (stack 0)


class Alloc:
    __slots__ = ("t", "lo", "hi", "stack", "kind", "t_free", "category")

    def __init__(self, t, addr, length, stack, kind, category=False):
        self.t, self.stack, self.kind, self.category = t, stack, kind, category
        self.lo, self.hi = addr // PAGE, (addr + max(length, 1) + PAGE - 1) // PAGE
        self.t_free = None


class Image:
    """One process image's log: its allocations, indexed for lookups by page and time."""

    def __init__(self, pid, gen, start_ns, path):
        self.pid, self.gen, self.start_ns, self.path = pid, gen, start_ns, path
        self.allocs = []
        self.by_page = {}
        self.by_granule = {}

    def add(self, a):
        self.allocs.append(a)

    def index(self):
        self.allocs.sort(key=lambda a: a.t)
        for a in self.allocs:
            if a.hi - a.lo <= SMALL_PAGES:
                for p in range(a.lo, a.hi):
                    self.by_page.setdefault(p, []).append(a)
            else:
                for g in range(a.lo // GRANULE, (a.hi - 1) // GRANULE + 1):
                    self.by_granule.setdefault(g, []).append(a)

    def lookup(self, t, addr):
        """The allocation whose block lies on addr's page at time t (the latest live one), or None.
        Its record is written after the allocation returned: a fault inside the allocator
        (malloc writing a chunk header) is not the allocation's, as pfshim counts."""
        page = addr // PAGE
        best = None
        for lst in (self.by_page.get(page), self.by_granule.get(page // GRANULE)):
            if not lst:
                continue
            dead = 0
            for i in range(bisect.bisect_right(lst, t, key=lambda x: x.t) - 1, -1, -1):
                a = lst[i]
                if best is not None and a.t <= best.t:
                    break
                if not a.lo <= page < a.hi:
                    continue
                if a.t_free is None or a.t_free > t:
                    best = a
                    break
                dead += 1
                if dead > 256:  # a page of freed blocks only: not worth the search
                    break
        return best


def read_log(path):
    """Parses one log file into its Images, one a process image (a file holds a process's images
    after exec, each in blocks of its own from an IMAGE record on: log format version 2)."""
    data = open(path, "rb").read()
    out = []
    im = None
    live = {}  # addr -> [Alloc] not yet freed
    for name, _off, info, body in pfsdump.records(data):  # info: the record header's flags
        if name == "PROC_START":
            pid, _ppid, _root, start = struct.unpack_from("<QQQQ", body)
            gen, = struct.unpack_from("<I", body, 36)
            im = Image(pid, gen, start, path)
            out.append(im)
        elif name == "IMAGE":  # a new image, its records from here on
            im, live = None, {}
        elif im is None:
            continue
        elif name == "ALLOC":
            _seq, t, addr, size, length, _tid, stack, kind = struct.unpack_from("<QQQQQIIB", body)
            a = Alloc(t, addr, length or size, stack, kind, bool(info["flags"] & CATEGORY))
            im.add(a)
            live.setdefault(addr, []).append(a)
        elif name == "REMAP":
            _seq, t, _old, _olen, new, nlen, _tid, stack = struct.unpack_from("<QQQQQQII", body)
            a = Alloc(t, new, nlen, stack, 5)
            im.add(a)
            live.setdefault(new, []).append(a)
        elif name == "FREE":
            _seq, t, addr, _length = struct.unpack_from("<QQQQ", body)
            lst = live.get(addr)
            if lst:
                lst.pop().t_free = t
    for im in out:
        im.index()
    return out


def read_dir(d):
    """{(pid, exec_gen): Image} for every log in directory d."""
    out = {}
    for path in sorted(glob.glob(os.path.join(d, "*.pfslog"))):
        try:
            ims = read_log(path)
        except (struct.error, AssertionError, IndexError, OSError):
            continue  # a log the walker cannot read: its ranges are simply unknown
        for im in ims:
            out[(im.pid, im.gen)] = im
    return out
