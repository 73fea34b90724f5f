#!/usr/bin/env python3
"""`make fidelity`: tools/faultcheck on a gauntlet of real programs (docs/fidelity.md).

Runs each program natively and under the shim in fast and exact mode with the kernel's
fault tracepoints, prints the figures as Markdown and writes them into docs/fidelity.md
between its figure markers.  Exit status 1 when a judged process is off by more than
--ratio, or exact mode changed a run's own fault totals; 3 when the kernel's tracepoints
cannot be used here.
"""
import argparse
import datetime
import glob
import json
import os
import socket
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(HERE)
BEGIN = "<!-- figures: written by `make fidelity` (tools/fidelity.py); edits below are overwritten -->"
END = "<!-- end of figures -->"
MIN_FT, MIN_COW = 500, 50

POOL_PY = '''import multiprocessing as mp
def work(x):
    d = {i: str(i) * 10 for i in range(x * 200)}
    return sum(len(v) for v in d.values())
if __name__ == "__main__":
    big = [bytearray(4096) for _ in range(3000)]
    with mp.get_context("fork").Pool(2) as pool:
        print(sum(pool.map(work, range(40))), len(big))
'''

# A forked child that writes all it inherited without calling into an allocator (stores into its
# parent's dict: CPython's pymalloc serves the same slots), so the shim never runs in it before its end.
DICT_PY = '''import os
d = {i: str(i) for i in range(300000)}
pid = os.fork()
if pid == 0:
    for k in range(0, 300000, 3):
        d[k] = "x"
    os._exit(0)
os.waitpid(pid, 0)
print(len(d))
'''

PERL_PL = '''my %h; $h{$_} = "x" x 200 for 1 .. 50000;
my @kids;
for my $k (0 .. 2) {
    my $pid = fork();
    if ($pid == 0) { for my $key (keys %h) { $h{$key} .= "y" if $key % 3 == $k } exit 0 }
    push @kids, $pid;
}
my $st = 0; for (@kids) { waitpid($_, 0); $st += $? }
$h{$_} .= "z" for 1 .. 10000;
print "children $st, keys ", scalar(keys %h), "\\n";
'''

# The server with 100k keys of 1 KiB; BGSAVE while 10k SETs arrive (the saving child's
# copy-on-write and the server's); the same steps as tests/run-integration.sh t_redis_bgsave.
REDIS_SH = '''d=$1 port=$2
redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no --enable-debug-command yes \\
	--dir "$d" --dbfilename dump.rdb --daemonize no --logfile "$d/redis.log" &
server=$!
for i in $(seq 1 100); do [ "$(redis-cli -p $port ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
redis-cli -p $port debug populate 100000 key 1024 >/dev/null
redis-cli -p $port bgsave >/dev/null
seq 1 10000 | awk '{printf "SET key:%d %s\\r\\n", ($1 * 7) % 100000, "rewritten-while-saving"}' | redis-cli -p $port --pipe >/dev/null
while ! redis-cli -p $port info persistence | grep -q 'rdb_bgsave_in_progress:0'; do sleep 0.2; done
redis-cli -p $port info persistence | tr -d '\\r' | grep rdb_last_bgsave_status
redis-cli -p $port dbsize
redis-cli -p $port shutdown nosave >/dev/null 2>&1
wait $server
'''

# PostgreSQL as its own user: a server (the postmaster and the processes it forks), pgbench's
# initialization at scale 2 and 400 transactions from 2 clients; the cluster is made natively.
# The run's log directory goes to the server's user (the shim logs into a directory of the
# process's own user only): this script's own log is open already, the root processes after it
# (setpriv) are not traced, the server's are.
POSTGRES_SH = '''d=$1
B=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
rm -rf "$d/data" && mkdir -p "$d" && chown postgres "$d" && chmod 755 "$(dirname "$d")"
if [ -n "${PFSHIM_OUT:-}" ]; then chown postgres "$PFSHIM_OUT" && chmod 755 "$(dirname "$PFSHIM_OUT")"; fi
env -u LD_PRELOAD setpriv --reuid=postgres --regid=postgres --init-groups $B/initdb -D "$d/data" >"$d/initdb.log" 2>&1 ||
	{ echo "initdb failed"; tail -3 "$d/initdb.log"; exit 1; }
pg $B/postgres -D "$d/data" -k "$d" -c listen_addresses= -c shared_buffers=32MB >"$d/server.log" 2>&1 &
for i in $(seq 1 100); do pg $B/pg_isready -h "$d" -q && break; sleep 0.1; done
pg $B/pgbench -h "$d" -i -s 2 postgres >/dev/null 2>&1
pg $B/pgbench -h "$d" -c 2 -t 200 postgres 2>&1 | grep "number of transactions actually processed"
pg $B/pg_ctl -D "$d/data" stop -m fast >/dev/null
wait
'''

SQL = ("create table t(a integer, b text); with recursive c(x) as (select 1 union all select x + 1 from c "
       "where x < 200000) insert into t select x, hex(x * 7919 % 100003) from c; create index i on t(b); "
       "select count(*), sum(a), max(b) from t; select count(*) from t where a % 7 = 3;")


def c_source(functions=100):
    """About 3,000 lines of C that gives the optimizer work: loops, switches, structs."""
    out = ["#include <stddef.h>", "struct v { int a, b; double x; };", ""]
    for i in range(functions):
        out += ["int f%d(struct v *p, size_t n, int k)" % i, "{", "\tint acc = %d;" % i,
                "\tfor (size_t j = 0; j < n; j++) {", "\t\tswitch ((p[j].a + k) %% %d) {" % (3 + i % 5)]
        for c in range(3 + i % 5):
            out += ["\t\tcase %d:" % c, "\t\t\tacc += p[j].b * %d - (int)(p[j].x * %d.5);" % (c + 1, c), "\t\t\tbreak;"]
        out += ["\t\tdefault:", "\t\t\tacc ^= (int)j;", "\t\t}",
                "\t\tif (acc > %d)" % (1000 + i), "\t\t\tacc = acc / 3 + f%d(p, j / 2, k + 1);" % (i - 1) if i else "\t\t\tacc /= 3;",
                "\t\tp[j].x += acc * 0.%d;" % (i + 1), "\t}", "\treturn acc;", "}", ""]
    out += ["int main(void)", "{", "\tstruct v a[16] = {{0}};", "\treturn f%d(a, 16, 1) & 1;" % (functions - 1), "}"]
    return "\n".join(out) + "\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def gauntlet(work, only):
    """(name, argv, programs judged) of each program, its inputs written under work.  Where the
    command is a script driving the program (Redis), only the program's processes are judged."""
    def put(name, text):
        path = os.path.join(work, name)
        with open(path, "w") as f:
            f.write(text)
        return path
    seq = os.path.join(work, "xz.in")
    with open(seq, "w") as f:
        f.write("".join("%d\n" % i for i in range(1, 2000001)))
    os.makedirs(os.path.join(work, "redis"), exist_ok=True)
    progs = [
        ("python3 fork pool", ["/usr/bin/python3", put("pool.py", POOL_PY)], None),
        ("python3 child storing into its parent's dict", ["/usr/bin/python3", put("dict.py", DICT_PY)], None),
        ("perl forking 3 children", ["perl", put("fork.pl", PERL_PL)], None),
        ("redis-server BGSAVE with writes", ["bash", put("redis.sh", REDIS_SH), os.path.join(work, "redis"),
                                             str(free_port())], ["redis-server"]),
        ("sqlite3", ["sqlite3", ":memory:", SQL], None),
        ("postgres with pgbench", ["bash", put("postgres.sh", POSTGRES_SH), os.path.join(work, "pg")],
         ["postgres"]),
        ("gcc -O2 -c", ["gcc", "-O2", "-c", "-o", os.path.join(work, "gen.o"), put("gen.c", c_source())], None),
        ("xz -T2", ["xz", "-T2", "-3", "-c", "-k", seq], None),
    ]
    if not glob.glob("/usr/lib/postgresql/*/bin/postgres") or os.geteuid() != 0:
        sys.stderr.write("fidelity: postgres left out: it needs Debian's postgresql and root (to run it as its user)\n")
        progs = [p for p in progs if not p[0].startswith("postgres")]
    return [p for p in progs if not only or any(o in p[0] for o in only)]


def judged(p, programs):
    return not p.get("helper") and (programs is None or p["program"] in programs) and \
        (p["anon"]["ft"] >= MIN_FT or p["anon"]["cow"] >= MIN_COW)


def judged_processes(results):
    """(program name, mode, process) of each judged process of the runs under the shim."""
    for name, res in results:
        for mode, run in res.get("runs", {}).items():
            if mode != "native":
                for p in run["processes"]:
                    if judged(p, res.get("judge")):
                        yield name, mode, p


def n(x):
    return "–" if x is None else "{:,}".format(x)


def r(x):
    return "–" if x is None else "%.3f" % x


def size_s(b):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if b >= div:
            return "%.1f %siB" % (b / div, unit)
    return "%d B" % b


def verdict(p, ratio):
    if p["pfshim"] is None:
        return "no report"
    bad = [what for c, least, what in (("ft", MIN_FT, "ft"), ("cow", MIN_COW, "cow"))
           if p["anon"][c] >= least and abs(p["pfshim"]["anon"][c] / p["anon"][c] - 1) > ratio]
    return "**off: %s**" % ", ".join(bad) if bad else "yes"


def table(title, note, columns):
    """A section's title, its note and a table's header; columns starting with a space are numbers."""
    return ["", "### " + title, "", note, "", "| %s |" % " | ".join(c.strip() for c in columns),
            "| %s |" % " | ".join("---:" if c.startswith(" ") else "---" for c in columns)]


def markdown(results, ratio, header):
    within = "within %g %%" % (ratio * 100)
    out = [header]
    out += table("Per process: private anonymous memory",
                 "kernel = the kernel's faults there in that run, less those in the shim's own ranges; pfshim = its totals "
                 "(its own, `[pfshim]`, apart); "
                 "native = the kernel's count for the same process without the shim.",
                 ["program", "process", "mode", " kernel ft", " pfshim ft", " ratio", " kernel cow", " pfshim cow",
                  " ratio", " native ft / cow", within])
    for name, res in results:
        if "error" in res:
            out.append("| %s | – | – | %s |" % (name, res["error"]) + " |" * 8)
    for name, mode, p in judged_processes(results):
        ps, nat = p["pfshim"], p.get("native") or {}
        out.append("| %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |" % (
            name, p["command"], p["key"], mode, n(p["anon"]["ft"]), n(ps["anon"]["ft"]) if ps else "–",
            r((p["ratio"] or {}).get("ft")), n(p["anon"]["cow"]), n(ps["anon"]["cow"]) if ps else "–",
            r((p["ratio"] or {}).get("cow")), n(nat.get("ft")), n(nat.get("cow")), verdict(p, ratio)))
    out += table("Run totals: the kernel's faults in all memory, summed over the run",
                 "not-present / write to a present page; native: the least and the most of 2 native runs (the "
                 "program's own variation, which the exact check allows); \"shim's own\": faults whose instruction "
                 "lies in an object only the shim loads, plus its helper processes.",
                 ["program", " native", " fast", " exact", " shim's own fast / exact", "exact " + within])
    for name, res in results:
        if "error" in res:
            continue
        runs = res["runs"]
        cell = {m: "%s / %s" % (n(x["totals"]["not_present"]), n(x["totals"]["write_present"])) for m, x in runs.items()}
        nats = runs.get("native", {}).get("totals_all") or []
        if len(nats) > 1:  # the spread of the native runs, which the exact check allows
            cell["native"] = " / ".join("%s" % n(min(t[c] for t in nats)) + (
                "–%s" % n(max(t[c] for t in nats)) if max(t[c] for t in nats) != min(t[c] for t in nats) else "")
                for c in ("not_present", "write_present"))
        own = {m: n(x["totals"]["by_shim_code"] + x["totals"]["helpers"]) for m, x in runs.items() if m != "native"}
        ok = "–"
        if "exact" in runs:
            bad = [f for f in (res.get("check") or {}).get("failures", []) if f.startswith("exact: ") and "summed" in f]
            ok = "**no**" if bad else "yes"
        out.append("| %s | %s | %s | %s | %s / %s | %s |" % (name, cell.get("native", "–"), cell.get("fast", "–"),
                                                          cell.get("exact", "–"), own.get("fast", "–"), own.get("exact", "–"), ok))
    out += ["", "### Where the differences lie", "",
            "Per judged process and mode: the regions with the most kernel faults outside pfshim's logged "
            "allocations (kind, size, kernel ft/cow; of those, first touches of pages touched before: given "
            "back and touched again, as a trimmed heap's; and faults on pages of logged allocations; the "
            "objects whose code faulted), and the sites whose logged allocations the kernel counts "
            "differently (kernel ft/cow against pfshim's).", ""]
    for name, mode, p in judged_processes(results):
        out.append("- **%s, %s (%s), %s**: " % (name, p["command"], p["key"], mode) + "; ".join(
            "%s %s at %s: %s/%s (%s%s/%s in allocations; %s%s)" % (
                g["kind"], size_s(g["size"]), g["start"], n(g["ft"]), n(g["cow"]),
                "%s ft again, " % n(g["ft_again"]) if g.get("ft_again") else "", n(g["in_allocations"]["ft"]),
                n(g["in_allocations"]["cow"]), ", ".join("%s %d" % (os.path.basename(d), v) for d, v in g["code"]),
                ", mapped before pfshim started" if g["before_pfshim"] else "")
            for g in p["regions"][:3]))
        sites = [s for s in p["sites"] if s["difference"]][:3]
        if sites:
            out.append("  sites: " + "; ".join("`%s` (%s) %s/%s against %s" % (
                s["site"], s["kind"], n(s["kernel"]["ft"]), n(s["kernel"]["cow"]),
                "%s/%s" % (n(s["pfshim"]["ft"]), n(s["pfshim"]["cow"])) if s["pfshim"] else "no site") for s in sites))
    return "\n".join(out) + "\n"


def write_doc(doc, text):
    old = open(doc).read() if os.path.exists(doc) else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + BEGIN + "\n" + text + old[old.index(END):]
    else:
        new = old + ("\n" if old else "") + "## Figures\n\n" + BEGIN + "\n" + text + END + "\n"
    with open(doc, "w") as f:
        f.write(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--doc", help="write the figures into this file (docs/fidelity.md)")
    ap.add_argument("--ratio", type=float, default=0.05)
    ap.add_argument("--only", nargs="*", help="only the programs whose name contains one of these")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    work = tempfile.mkdtemp(prefix="fidelity.")
    results = []
    try:
        for name, argv, judge in gauntlet(work, a.only):
            sys.stderr.write("fidelity: %s ...\n" % name)
            p = subprocess.run([os.path.join(HERE, "faultcheck"), "--json", "--mode", "both", "--native-runs", "2",
                                "--check", str(a.ratio),
                                "--lib", os.path.join(build, "libpfshim.so"), "--cli", os.path.join(build, "pfshim"),
                                "--timeout", "300", "--"] + argv, cwd=work, capture_output=True, text=True)
            if p.returncode == 3:
                sys.stderr.write(p.stderr)
                return 3
            if p.returncode not in (0, 1):
                results.append((name, {"error": "faultcheck failed (%d): %s" % (p.returncode, p.stderr.strip()[-200:])}))
                continue
            res = json.loads(p.stdout)
            res["judge"] = judge
            results.append((name, res))
    finally:
        subprocess.run(["rm", "-rf", work])
    commit = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
    header = "Measured by `make fidelity` on %s: Linux %s, commit %s; a process is judged when the kernel counts " \
             "at least %d first touches (ft) or %d copy-on-write faults (cow) of private anonymous memory in it." % (
                 datetime.date.today().isoformat(), os.uname().release, commit or "?", MIN_FT, MIN_COW)
    text = markdown(results, a.ratio, header)
    sys.stdout.write(text)
    if a.doc:
        write_doc(a.doc, text)
    fails = [(name, res["error"]) for name, res in results if "error" in res]
    for name, res in results:
        # faultcheck judges every process; here only the program's own (not a driving script's)
        fails += [(name, f) for f in (res.get("check") or {}).get("failures", []) if "summed over the run" in f or "perf lost" in f]
    fails += [(name, "%s: %s (%s, pid %d): %s" % (mode, p["command"], p["key"], p["pid"], verdict(p, a.ratio).strip("*")))
              for name, mode, p in judged_processes(results) if verdict(p, a.ratio) != "yes"]
    for name, f in fails:
        sys.stderr.write("fidelity: %s: %s\n" % (name, f))
    sys.stderr.write("fidelity: %d programs, %d findings beyond %g %%\n" % (len(results), len(fails), a.ratio * 100))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
