"""The kernel's own count of a command's page faults, from its fault tracepoints.

`perf record` follows the command and its children with the tracepoints
exceptions:page_fault_user and exceptions:page_fault_kernel (the latter kept for user
addresses only: the kernel touching user memory, e.g. read() into a fresh buffer) and the
processes' MMAP2/FORK/COMM records; `parse` replays them in time order and classifies each
fault by the mapping that held its address then and by its x86 error code.

Error code bits: 1 present, 2 write, 4 user, 16 instruction fetch.  Not present: a first
touch.  A write to a present page is, per page and per "epoch" (from exec or the latest
fork of that process): the first one with no earlier fault on the page in the epoch, in a
process that forked or was forked: copy-on-write ("cow"); after a not-present read of the
page in the epoch: a write after a zero-page read ("after-read"); after a write in the
epoch: the page was write-protected again (userfaultfd, mprotect, soft-dirty):
"reprotect"; none of these: "other-write".
"""
import bisect
import os
import re
import shutil
import signal
import struct
import subprocess

TRACEFS = "/sys/kernel/tracing"
EVENTS = ("exceptions:page_fault_user", "exceptions:page_fault_kernel")
# mremap has no MMAP2 record: memory it moved would be filed under whatever mapping the table
# last knew at its new place (postgres: a block realloc moved where exact mode's perf ring had
# been, 'other').  Its tracepoints say where each move went, where the kernel has them.
MREMAP_EVENTS = ("syscalls:sys_enter_mremap", "syscalls:sys_exit_mremap")
USER_TOP = 1 << 56  # above every user address (5-level paging included)
PAGE = 4096

# Categories of memory, in the order tables show them.
CATEGORIES = ("anon", "stack", "data", "file", "other")
# Classes of a fault.
CLASSES = ("ft", "cow", "after-read", "reprotect", "other-write", "present-read")


class Unavailable(Exception):
    """The kernel's tracepoints cannot be used here; the message says why."""


def ensure_tracing():
    """Mounts tracefs and installs Debian's linux-perf where missing (root only); returns perf's path."""
    root = os.geteuid() == 0
    perf = shutil.which("perf")
    if perf is None or subprocess.run([perf, "--version"], capture_output=True).returncode != 0:
        if not root:
            raise Unavailable("perf is not installed (apt-get install linux-perf, as root)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "linux-perf"],
                           env=env, capture_output=True, text=True)
        perf = shutil.which("perf")
        if r.returncode != 0 or perf is None:
            raise Unavailable("installing linux-perf failed: " + (r.stderr.strip().splitlines() or ["?"])[-1])
    if not os.path.isdir(os.path.join(TRACEFS, "events")):
        if not root:
            raise Unavailable("tracefs at %s is not mounted or not readable: it needs root" % TRACEFS)
        r = subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], capture_output=True, text=True)
        if r.returncode != 0:
            raise Unavailable("cannot mount tracefs: " + r.stderr.strip())
    if not os.path.isdir(os.path.join(TRACEFS, "events", "exceptions", "page_fault_user")):
        raise Unavailable("this kernel has no exceptions:page_fault_user tracepoint")
    r = subprocess.run([perf, "record", "-q", "--no-bpf-event", "-e", EVENTS[0], "-o", "/dev/null", "--", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Unavailable("perf cannot record %s here (%s)" % (EVENTS[0], (r.stderr.strip().splitlines() or ["?"])[-1]))
    return perf


def record(perf, data, argv, env, stdout=None, stderr=None, timeout=None):
    """Runs argv under perf record into DATA; returns the command's exit status, or "timeout"
    (then perf and the command, in a session of their own, are killed)."""
    cmd = [perf, "record", "-q", "-B", "-N", "--no-bpf-event", "-d", "-k", "CLOCK_MONOTONIC", "-m", "8M",
           "-e", EVENTS[0], "-e", EVENTS[1], "--filter", "address < 0x%x" % USER_TOP]
    if all(os.path.isdir(os.path.join(TRACEFS, "events", *e.split(":"))) for e in MREMAP_EVENTS):
        cmd += ["-e", MREMAP_EVENTS[0], "-e", MREMAP_EVENTS[1]]
    cmd += ["-o", data, "--"] + argv
    p = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        return "timeout"


class Ident:
    """A region of one process's address space: what one mmap made, a heap or stack as it grew."""
    __slots__ = ("id", "lo", "hi", "name", "kind", "t", "first_prot", "counts", "ip_dso", "guard_below")

    def __init__(self, iid, lo, hi, name, kind, t, prot):
        self.id, self.lo, self.hi, self.name, self.kind, self.t = iid, lo, hi, name, kind, t
        self.first_prot = prot
        self.counts = {}  # class -> count
        self.ip_dso = {}  # object holding the faulting instruction -> count
        self.guard_below = False

    def copy(self):
        n = Ident(self.id, self.lo, self.hi, self.name, self.kind, self.t, self.first_prot)
        n.guard_below = self.guard_below
        return n


def is_anon(name):
    return name in ("//anon", "[heap]") or name.startswith("[anon")


_phdrs = {}


def load_segments(path):
    """The PT_LOAD segments (p_offset, p_vaddr, p_memsz) of an ELF file, or None."""
    if path not in _phdrs:
        segs = None
        try:
            with open(path, "rb") as f:
                h = f.read(64)
                if h[:4] == b"\x7fELF" and h[4] == 2 and h[5] == 1:  # 64-bit, little-endian
                    phoff, = struct.unpack_from("<Q", h, 0x20)
                    phentsize, phnum = struct.unpack_from("<HH", h, 0x36)
                    f.seek(phoff)
                    tab = f.read(phentsize * phnum)
                    segs = []
                    for i in range(phnum):
                        typ, _flags, off, vaddr, _paddr, _filesz, memsz = struct.unpack_from("<IIQQQQQ", tab, i * phentsize)
                        if typ == 1:
                            segs.append((off, vaddr, memsz))
        except (OSError, struct.error):
            segs = None
        _phdrs[path] = segs
    return _phdrs[path]


def image_end(path, start, pgoff):
    """Where the memory image of the object whose segment at file offset pgoff is mapped at
    start ends (its segments' sizes in memory, to a page): a module's .bss ends there, and
    anonymous memory mapped right after it beyond is not its own (the loader's static TLS).
    None when the file cannot tell."""
    segs = load_segments(path)
    at = [(off, vaddr) for off, vaddr, _m in segs or () if off // PAGE * PAGE <= pgoff]
    if not at:
        return None
    off, vaddr = max(at)  # the segment holding that offset (a piece of it, after RELRO's mprotect)
    bias = start - (vaddr // PAGE * PAGE + pgoff - off // PAGE * PAGE)
    return (bias + max(v + m for _o, v, m in segs) + PAGE - 1) // PAGE * PAGE


class Image:
    """One program image of one process: from its exec (or fork) to its exec or exit."""

    def __init__(self, pid, ppid, gen, key, comm, t, parent=None):
        self.pid, self.ppid, self.gen, self.key, self.comm, self.t_start = pid, ppid, gen, key, comm, t
        self.exec_comm = parent.exec_comm if parent is not None else comm  # its name at exec
        self.exe = None
        self.parent = parent              # the image it was forked from
        self.forked = parent is not None  # a fork child: its pages were present at the fork
        self.forks = 0
        self.segs = []    # sorted [start, end, ident, prot, name]
        self.starts = []  # the segments' starts, for bisect
        self.idents = []
        self.pages = {}   # page -> 'r' | 'w': the page's fault in the current epoch
        self.counts = {c: dict.fromkeys(CLASSES, 0) for c in CATEGORIES}
        self.kernel_side = 0   # faults the kernel took on user memory (already in counts)
        self.ip_dso = {}       # object holding the faulting instruction -> faults (all memory)
        self.anon_faults = []  # (t, addr, class, ident, code's object) of private anonymous faults
        self.exe_end = None
        self.last_map = None   # the latest segment recorded: bss follows its module's data
        if parent is not None:
            self.exe, self.exe_end = parent.exe, parent.exe_end
            self.idents = [i.copy() for i in parent.idents]
            self.segs = [[s, e, self.idents[i.id], p, nm] for s, e, i, p, nm in parent.segs]
            self.starts = [x[0] for x in self.segs]

    # -- the address space ------------------------------------------------------------
    def find(self, addr):
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and addr < self.segs[i][1]:
            return self.segs[i]
        return None

    def new_ident(self, start, end, prot, name, t):
        i = Ident(len(self.idents), start, end, name, self.kind_of(start, end, prot, name), t, prot)
        self.idents.append(i)
        return i

    def map(self, start, end, prot, name, t, pgoff=0):
        """A MMAP2 record: a new mapping, a changed piece of one (mprotect), a heap or stack grown,
        or a new mapping the kernel merged with its neighbour (the record spans both)."""
        anon = is_anon(name)
        hit = self.overlapping(start, end)
        same = all(is_anon(h[4]) if anon else h[4] == name for h in hit)
        gaps, at = [], start
        for h in hit:
            if h[0] > at:
                gaps.append((at, h[0]))
            at = max(at, h[1])
        if at < end:
            gaps.append((at, end))
        pieces = []  # new segments inside [start, end); the parts of `hit` outside stay
        # The heap and the stack grow: a record over them or (a piece the kernel could not merge,
        # registered with userfaultfd for one) right above the heap is more of them.
        below = self.find(start - 1) if anon and start else None
        grown = next((x[2] for x in hit + ([below] if below else []) if x[2].kind in ("heap", "stack")), None)
        if hit and same and not gaps and any(h[3] != prot for h in hit):
            # mprotect: the pieces keep their regions and take the new protection
            for h in hit:
                a, b = max(h[0], start), min(h[1], end)
                pieces.append([a, b, h[2], prot, name])
                if anon and h[2].first_prot.startswith("---") and b == h[2].hi and a > h[2].lo:
                    h[2].guard_below = True  # glibc's thread stacks: read-write above a guard page
        elif same and grown is not None:
            grown.lo, grown.hi = min(grown.lo, start), max(grown.hi, end)
            pieces.append([start, end, grown, prot, name])
        elif hit and same and gaps and anon:
            # merged with a neighbour: only the new part is a new region
            ident = self.new_ident(gaps[0][0], gaps[-1][1], prot, name, t)
            for h in hit:
                pieces.append([max(h[0], start), min(h[1], end), h[2], prot, h[4]])
            for a, b in gaps:
                pieces.append([a, b, ident, prot, name])
        else:
            pieces.append([start, end, self.new_ident(start, end, prot, name, t), prot, name])
        self.replace(hit, start, end, pieces)
        if not anon and name.startswith("/") and not name.startswith("/dev/") and prot[1:] == "w-p":
            # The loader maps a module's zero-filled tail before or after its writable segment (the
            # records of one process come in either order): anonymous memory right above it,
            # mapped in the same moment, is its bss, as pfshim takes it (postgres's libraries:
            # their first .bss page was 'anon').  Not memory mapped there later (a record of the
            # segment again, from an mprotect, would take the program's block for a bss).
            nxt = self.find(end)
            if nxt is not None and nxt[0] == end and is_anon(nxt[4]) and nxt[2].kind == "anon" \
                    and abs(nxt[2].t - t) < 1000000 and self.has_bss(name, start, end, pgoff):
                nxt[2].kind = "bss"
        if not anon and name.startswith("/"):
            if self.exe is None:
                self.exe = name
            if name == self.exe:
                self.exe_end = max(self.exe_end or 0, end)
        self.last_map = [start, end, None, prot, name, pgoff]

    @staticmethod
    def has_bss(name, start, end, pgoff):
        """Whether the module's segment [start, end) of file `name` has a zero-filled tail after
        it (its memory image goes on past the segment's file pages), as far as the file tells."""
        e = image_end(name, start, pgoff)
        return e is None or e > end

    def kind_of(self, start, end, prot, name):
        if name == "[stack]":
            return "stack"
        if name == "[heap]":
            return "heap"
        if is_anon(name):
            if prot[3] == "s":
                return "shared"
            last = self.last_map
            if last and last[1] == start and not is_anon(last[4]) and last[4].startswith("/") and "w" in last[3] \
                    and self.has_bss(last[4], last[0], last[1], last[5]):
                return "bss"  # the zero-filled tail of the module just mapped
            if self.exe_end is not None and self.exe_end <= start < self.exe_end + (1 << 30) + (32 << 20):
                return "heap"  # the brk heap: randomized within 1 GiB above the program
            return "anon"
        if name.startswith("["):
            return "special"
        return "file"

    # -- faults -----------------------------------------------------------------------
    def overlapping(self, start, end):
        """The segments that meet [start, end), in address order."""
        i = max(bisect.bisect_right(self.starts, start) - 1, 0)
        hit = []
        while i < len(self.segs) and self.segs[i][0] < end:
            if self.segs[i][1] > start:
                hit.append(self.segs[i])
            i += 1
        return hit

    def replace(self, hit, start, end, pieces):
        """The segments `hit` give way to `pieces` inside [start, end); their parts outside stay."""
        keep = []
        for h in hit:
            if h[0] < start:
                keep.append([h[0], start] + h[2:])
            if h[1] > end:
                keep.append([end, h[1]] + h[2:])
        hs = set(id(h) for h in hit)
        self.segs = sorted([x for x in self.segs if id(x) not in hs] + keep + pieces, key=lambda x: x[0])
        self.starts = [x[0] for x in self.segs]

    def moved(self, old, old_len, new, new_len):
        """mremap moved [old, old + old_len) to new (or grew or shrank it in place): the
        mappings there go along, resized, the region keeping its identity; what was at the new
        place (MREMAP_FIXED) gives way."""
        hit = self.overlapping(old, old + old_len)
        if not hit:
            return
        first = hit[0]
        self.replace(hit, old, old + old_len, [])
        new_end = new + new_len
        ident = first[2]
        ident.lo, ident.hi = min(ident.lo, new), max(ident.hi, new_end)
        self.replace(self.overlapping(new, new_end), new, new_end, [[new, new_end, ident, first[3], first[4]]])

    def fault(self, t, addr, ec, ip, kernel_side):
        page = addr // PAGE
        seg = self.find(addr)
        if seg is None:
            # The main stack grows down without a record on some kernels: below [stack].
            st = [x for x in self.segs if x[4] == "[stack]"]
            if st and st[0][0] - (256 << 20) <= addr < st[0][0]:
                self.map(page * PAGE, st[0][1], st[0][3], "[stack]", t)
                seg = self.find(addr)
        if ec & 1 == 0:
            cls = "ft"
            self.pages[page] = "w" if ec & 2 else "r"
        elif ec & 2:
            prev = self.pages.get(page)
            if prev == "w":
                cls = "reprotect"
            elif prev == "r":
                cls = "after-read"
            else:
                cls = "cow" if (self.forked or self.forks) else "other-write"
            self.pages[page] = "w"
        else:
            cls = "present-read"
        if seg is None:
            cat, ident = "anon", self.unrecorded(t)
        else:
            ident = seg[2]
            cat = category(seg[4], seg[3], ident.kind)
        self.counts[cat][cls] += 1
        ident.counts[cls] = ident.counts.get(cls, 0) + 1
        if kernel_side:
            self.kernel_side += 1
        code = self.find(ip) if ip is not None else None
        dso = code[4] if code is not None else ("[kernel]" if kernel_side else "[unknown]")
        ident.ip_dso[dso] = ident.ip_dso.get(dso, 0) + 1
        self.ip_dso[dso] = self.ip_dso.get(dso, 0) + 1
        if cat == "anon":
            self.anon_faults.append((t, addr, cls, ident, dso))

    def unrecorded(self, t):
        """Anonymous memory no MMAP2 record announced (mremap moves it without one)."""
        for i in self.idents:
            if i.kind == "unrecorded":
                return i
        i = Ident(len(self.idents), 0, 0, "(no mmap record: mremap?)", "unrecorded", t, "rw-p")
        self.idents.append(i)
        return i

    def fork_parent(self):
        self.forks += 1
        self.pages = {}


def category(name, prot, kind):
    if kind in ("anon", "heap", "unrecorded"):
        return "anon"
    if kind == "stack":
        return "stack"
    if kind == "bss":
        return "data"
    if kind in ("shared", "special"):
        return "other"
    if prot[3] == "s":
        return "other"
    return "data" if "w" in prot else "file"


SAMPLE = re.compile(r"^\s*(.*?)\s+(-?\d+)/(-?\d+)\s+(\d+)\.(\d{9}):\s+(.*)$")
TP = re.compile(r"(exceptions:page_fault_(?:user|kernel)):\s+address=(0x[0-9a-f]+)\s+ip=(\S+)\s+error_code=(0x[0-9a-f]+)")
MMAP2 = re.compile(r"PERF_RECORD_MMAP2? (-?\d+)/(-?\d+): \[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (\S+)(?: [^\]]*)?\]: ([r-][w-][x-][ps]) (.*)$")
FORK = re.compile(r"PERF_RECORD_FORK\((\d+):(\d+)\):\((\d+):(\d+)\)")
COMM = re.compile(r"PERF_RECORD_COMM( exec)?: (.*):(\d+)/(\d+)$")
MREMAP_ENTER = re.compile(r"syscalls:sys_enter_mremap: addr: (0x[0-9a-f]+), old_len: (0x[0-9a-f]+), new_len: (0x[0-9a-f]+)")
MREMAP_EXIT = re.compile(r"syscalls:sys_exit_mremap: (0x[0-9a-f]+)")
# The kernel's copies that run with page faults disabled (generic_perform_write's
# copy_folio_from_iter_atomic, __copy_from_user_inatomic, copy_from_user_nofault): the exception
# is raised, but no fault is taken (the copy fails, the kernel faults the page in with
# fault_in_readable and tries again, an exception of its own).  postgres's backends writing from
# shared memory: 226 of a backend's 302 kernel-side exceptions there, up to 4 a page.
ATOMIC_COPY = re.compile(r"_atomic$|inatomic|_nofault$")
LOST = re.compile(r"PERF_RECORD_LOST(?:_SAMPLES)?.*?(?:lost:? ?|: )(\d+)")


class Run:
    """The processes of one recorded run.  With `wrapper`, the first image of the command is a
    launcher (sh) that execs the real command: it is left out."""

    def __init__(self, wrapper=True):
        self.images = []
        self.live = {}      # pid -> current Image
        self.keys = {}      # pid -> lineage key of the process: "1", its children "1.1", "1.2", ...
        self.children = {}  # pid -> forks made so far
        self.lost = 0
        self.root = None
        self.wrapper = wrapper

    def image(self, pid, comm, t):
        im = self.live.get(pid)
        if im is None:
            key = str(len([k for k in self.keys.values() if "." not in k]) + 1)
            self.keys[pid] = key
            im = Image(pid, 0, 0, key, comm, t)
            if self.root is None:
                self.root = pid
            self.live[pid] = im
            self.images.append(im)
        return im

    def fork(self, child, parent, t):
        pim = self.live.get(parent)
        if pim is None:
            return
        pim.fork_parent()
        n = self.children.get(parent, 0) + 1
        self.children[parent] = n
        self.keys[child] = "%s.%d" % (self.keys[parent], n)
        im = Image(child, parent, 0, self.keys[child], pim.comm, t, parent=pim)
        self.live[child] = im
        self.images.append(im)

    def exec(self, pid, comm, t):
        old = self.live.get(pid)
        if old is None:
            self.image(pid, comm, t)
            return
        if pid == self.root and self.wrapper:
            self.wrapper = False
            im = Image(pid, old.ppid, 0, old.key, comm, t)
            self.images[self.images.index(old)] = im
        else:
            gen = old.gen + 1
            im = Image(pid, old.ppid, gen, "%s@%d" % (self.keys[pid], gen), comm, t)
            self.images.append(im)
        self.live[pid] = im


def parse(perf, data, wrapper=True):
    """Replays a recorded run; returns a Run."""
    p = subprocess.Popen([perf, "script", "-i", data, "--show-mmap-events", "--show-task-events",
                          "--show-lost-events", "--ns", "-F", "comm,pid,tid,time,event,trace"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, errors="replace")
    run = parse_lines(p.stdout, wrapper)
    p.wait()
    if p.returncode != 0:
        raise Unavailable("perf script failed on %s (exit %d)" % (data, p.returncode))
    return run


def parse_lines(lines, wrapper=True):
    """Replays the lines of `perf script` (parse's fields); returns a Run."""
    run = Run(wrapper)
    pending = {}  # thread -> (addr, old_len, new_len) of its mremap under way
    for line in lines:
        m = SAMPLE.match(line)
        if not m:
            continue
        comm, pid, rest = m.group(1), int(m.group(2)), m.group(6)
        t = int(m.group(4)) * 1000000000 + int(m.group(5))  # ns, CLOCK_MONOTONIC
        if rest.startswith("exceptions:"):
            f = TP.match(rest)
            if not f:
                continue
            addr = int(f.group(2), 16)
            if addr >= USER_TOP or pid <= 0:
                continue
            if f.group(1).endswith("kernel") and ATOMIC_COPY.search(f.group(3)):
                continue  # page faults disabled there: no fault was taken (the kernel faults the page in next)
            ip = int(f.group(3), 16) if f.group(3).startswith("0x") else None
            im = run.image(pid, comm, t)
            im.fault(t, addr, int(f.group(4), 16), ip, f.group(1).endswith("kernel"))
        elif rest.startswith("syscalls:sys_"):
            f = MREMAP_ENTER.match(rest)
            if f:
                pending[int(m.group(3))] = tuple(int(f.group(i), 16) for i in (1, 2, 3))
                continue
            f, call = MREMAP_EXIT.match(rest), pending.pop(int(m.group(3)), None)
            new = int(f.group(1), 16) if f else USER_TOP
            if call and pid > 0 and new < USER_TOP and new % PAGE == 0:  # not an error
                up = lambda n: (n + PAGE - 1) // PAGE * PAGE
                run.image(pid, comm, t).moved(call[0], up(call[1]), new, up(call[2]))
        elif rest.startswith("PERF_RECORD_MMAP"):
            f = MMAP2.match(rest)
            if f and int(f.group(1)) > 0:
                start, ln = int(f.group(3), 16), int(f.group(4), 16)
                run.image(int(f.group(1)), comm, t).map(start, start + ln, f.group(6), f.group(7).strip(), t,
                                                        int(f.group(5), 16))
        elif rest.startswith("PERF_RECORD_FORK"):
            f = FORK.match(rest)
            if f and f.group(1) != f.group(3):
                child, parent = int(f.group(1)), int(f.group(3))
                run.image(parent, comm, t)
                run.fork(child, parent, t)
        elif rest.startswith("PERF_RECORD_COMM"):
            f = COMM.match(rest.rstrip())
            if f and f.group(1):
                run.exec(int(f.group(3)), f.group(2), t)
            elif f and f.group(3) == f.group(4) and int(f.group(3)) in run.live:
                run.live[int(f.group(3))].comm = f.group(2)  # the process renamed itself (prctl)
        elif rest.startswith("PERF_RECORD_LOST"):
            f = LOST.search(rest)
            run.lost += int(f.group(1)) if f else 1
    return run
