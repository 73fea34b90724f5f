#!/usr/bin/env python3
"""The smoke gauntlet (issue 24): every program of a broad, fixed set from the system, run with
--version under the shim in fast and in exact mode, with LANG=C.UTF-8.  Its stdout, its stderr
(less the shim's own "pfshim:" lines) and its exit status must be those of its native run; a
crash, a hang or a difference fails and names the program.

The set: the executables in /usr/bin of Debian's base system (the installed packages of priority
required, important and standard) and of the packages of the tools `make check` installs (TOOLS:
each must be there), that answer --version natively: exit 0, some output, within a second; where a
run under the shim answers otherwise, NATIVE_RERUNS more native runs tell whether the program's
answer is racy natively (as groff's pipeline is): then it is left out.  (One native run first, not
two: a racy program whose runs under the shim answered as its first native run passes, rightly.)
Setuid and setgid programs are left out (the shim leaves them alone, docs/security.md).  Each run
has a clean environment, a home, a working directory and a TMPDIR of its own.

usage: smoke.py LIBPFSHIM [--jobs N] [--summary FILE]
Prints the failures, the programs left out (counted by reason) and
"smoke: N passed, M failed, K skipped"; exit 1 on a failure.
"""
import argparse
import collections
import concurrent.futures
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

TOOLS = "git gawk sqlite3 openssl python3 ld gcc cpp make redis-cli perl xz bzip2 gzip tar".split()
NATIVE_LIMIT = 1.0
# a run under the shim that takes longer than this hangs
SHIM_LIMIT = 30.0
MODES = ["fast", "exact"]
# native runs made again when a run under the shim answers otherwise, until one answers otherwise
# too: groff --version orders its subprograms' lines differently in about a quarter of its native
# runs, and 10 runs all alike let that pass for the shim's doing once (0.75^11: 4%); 40 (0.001%)
NATIVE_RERUNS = 40


def dpkg(*args):
    return subprocess.run(["dpkg-query", *args], capture_output=True, text=True).stdout


def packages_of(paths):
    """{path: the package that has it (as /usr/bin/X or, on a merged /usr, /bin/X)}, for the paths
    a package has; one dpkg-query (each reads the whole package database: a third of a CPU-second)."""
    names = {p: (p, "/bin/" + os.path.basename(p)) for p in paths}
    owner = {}
    for line in dpkg("-S", *sorted({n for ns in names.values() for n in ns})).splitlines():
        pkg, sep, path = line.partition(": ")
        if sep and path not in owner:
            owner[path] = pkg.split(":")[0]
    return {p: next(owner[n] for n in ns if n in owner) for p, ns in names.items() if any(n in owner for n in ns)}


def program_set():
    """The programs to try, and the tools that are missing."""
    pkgs = [line.split()[2] for line in dpkg("-W", "-f=${Priority} ${db:Status-Abbrev} ${Package}\n").splitlines()
            if line.split()[:1] in (["required"], ["important"], ["standard"]) and line.split()[1] == "ii"]
    missing = []
    paths = {tool: shutil.which(tool, path="/usr/bin:/bin") for tool in TOOLS}
    owners = packages_of([os.path.realpath(p) for p in paths.values() if p])
    for tool in TOOLS:
        pkg = paths[tool] and owners.get(os.path.realpath(paths[tool]))
        if pkg:
            pkgs.append(pkg)
        else:
            missing.append(tool)
    progs = set()
    for f in dpkg("-L", *sorted(set(pkgs))).splitlines():
        if os.path.dirname(f) not in ("/usr/bin", "/bin"):
            continue
        real = os.path.realpath("/usr/bin/" + os.path.basename(f))
        try:
            st = os.stat(real)
        except OSError:
            continue
        # one run per program, whatever its names
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111 and not st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            progs.add(real)
    return sorted(progs), missing


def run(prog, mode, lib, tmp):
    """(status, stdout, stderr) of `prog --version`, natively or in a mode of the shim; status is
    the exit status, -N for signal N, or "hung"."""
    d = tempfile.mkdtemp(dir=tmp)
    os.mkdir(d + "/home")
    os.mkdir(d + "/cwd")
    os.mkdir(d + "/tmp")
    # a temporary directory of its own: bashbug leaves /tmp/bbug.$PID behind, and fails when a
    # later process of the same pid finds it
    env = {"PATH": "/usr/bin:/bin", "HOME": d + "/home", "LANG": "C.UTF-8", "TERM": "dumb", "TMPDIR": d + "/tmp"}
    limit = NATIVE_LIMIT
    if mode != "native":
        env.update(PFSHIM_MODE=mode, PFSHIM_QUIET="1", PFSHIM_OUT=d + "/logs", LD_PRELOAD=lib)
        limit = SHIM_LIMIT
    p = subprocess.Popen([prog, "--version"], cwd=d + "/cwd", env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=limit)
        status = p.returncode
    except subprocess.TimeoutExpired:
        # the program and whatever it started
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        status = "hung"
    shutil.rmtree(d, ignore_errors=True)
    return status, out, err


def describe(status):
    if status == "hung":
        return "hung (killed after %.0f s)" % SHIM_LIMIT
    if status < 0:
        return "killed by %s" % signal.Signals(-status).name
    return "exit %d" % status


def first_difference(a, b):
    for x, y in zip(a.splitlines() + [b""], b.splitlines() + [b""]):
        if x != y:
            return "%r, natively %r" % (y[:60], x[:60])
    return ""


def shim_lines_removed(err):
    return b"".join(line for line in err.splitlines(keepends=True) if not line.startswith(b"pfshim: "))


def check(prog, lib, tmp):
    """("pass", prog), ("fail", "prog: why") or ("skip", reason)."""
    n1 = run(prog, "native", lib, tmp)
    if n1[0] == "hung":
        return "skip", "takes over a second natively"
    if n1[0] != 0:
        return "skip", "does not answer --version (exit status)"
    if not n1[1]:
        return "skip", "does not answer --version (no output)"
    why = []
    for mode in MODES:
        status, out, err = run(prog, mode, lib, tmp)
        if status != n1[0]:
            why.append("%s mode: %s, natively exit 0" % (mode, describe(status)))
        elif (out, shim_lines_removed(err)) != n1[1:]:
            # a program whose output is racy (a pipeline of its own, as groff's) may answer
            # otherwise natively too, only less often: more native runs tell
            if any(run(prog, "native", lib, tmp) != n1 for _ in range(NATIVE_RERUNS)):
                return "skip", "answers differently natively"
            stream, a, b = ("stdout", n1[1], out) if out != n1[1] else ("stderr", n1[2], shim_lines_removed(err))
            why.append("%s mode: %s differs: %s" % (mode, stream, first_difference(a, b)))
    return ("fail", "%s: %s" % (prog, "; ".join(why))) if why else ("pass", prog)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    # one more than the cores, as the integration runner: a program's start under the shim waits a little
    ap.add_argument("--jobs", type=int, default=(os.cpu_count() or 2) + 1)
    ap.add_argument("--summary")
    a = ap.parse_args()
    lib = os.path.abspath(a.lib)
    progs, missing = program_set()
    if missing:
        print("smoke: missing: %s: `make check` installs them (tools/deps.sh test)" % " ".join(missing))
        return 1
    if os.geteuid() != 0 and not os.access("/dev/userfaultfd", os.R_OK | os.W_OK):
        # the shim would fall back to fast mode: nothing more to learn
        MODES.remove("exact")
        print("smoke: SKIP exact mode: it needs root or access to /dev/userfaultfd")
    print("smoke: %d programs of the base system and the test tools, %d at once, in %s mode" % (
        len(progs), a.jobs, " and ".join(MODES)))
    sys.stdout.flush()
    tmp = tempfile.mkdtemp(prefix="pfshim-smoke.")
    try:
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
            results = list(ex.map(lambda p: check(p, lib, tmp), progs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    by = collections.defaultdict(list)
    left_out = collections.defaultdict(list)
    for prog, (kind, what) in zip(progs, results):
        by[kind].append(what)
        if kind == "skip":
            left_out[what].append(os.path.basename(prog))
    for f in by["fail"]:
        print("FAIL " + f)
    skips = ["  SKIP %d programs: %s (%s%s)" % (len(names), why, ", ".join(names[:6]), ", ..." if len(names) > 6 else "")
             for why, names in sorted(left_out.items())]
    line = "smoke: %d passed, %d failed, %d skipped" % (len(by["pass"]), len(by["fail"]), len(by["skip"]))
    print("\n".join(skips + [line]))
    if a.summary:
        with open(a.summary, "w") as f:
            f.write("\n".join([line] + skips) + "\n")
    return 1 if by["fail"] or not by["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
