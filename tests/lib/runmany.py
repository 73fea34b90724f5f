#!/usr/bin/env python3
"""Runs one command many times, several at once, each with a time limit (the stress tests).

usage: runmany.py RUNS JOBS SECONDS [--status N] [--err FILE] [VAR=VALUE...] CMD [ARG...]

Runs CMD RUNS times, JOBS at once, in the current directory, each with the VAR=VALUE
settings added to its environment; "{}" in a VALUE or an ARG becomes the run's number
(1..RUNS).  Its output goes to /dev/null, its messages to FILE (appended; /dev/null without
--err).  A run still going after SECONDS is killed with its process group (SIGKILL, as
`timeout -s KILL` does) and counted as hung.  Prints one line, the runs by exit status
("500 runs: 500 exited 0"), and exits 1 unless every run exited N (0 by default).
The runner itself is one process: no shell or timeout process a run beside the program.
"""
import collections
import concurrent.futures
import os
import signal
import subprocess
import sys


def main():
    args = sys.argv[1:]
    if len(args) < 4:
        sys.exit(__doc__.split("\n\n")[1])
    runs, jobs, limit, args = int(args[0]), int(args[1]), float(args[2]), args[3:]
    want, err = 0, os.devnull
    while args and args[0] in ("--status", "--err"):
        if args[0] == "--status":
            want = int(args[1])
        else:
            err = args[1]
        args = args[2:]
    env = []
    while args and "=" in args[0] and not args[0].startswith("="):
        env.append(args.pop(0).split("=", 1))
    if not args:
        sys.exit("runmany: no command")
    errf = open(err, "ab")

    def one(i):
        n = str(i)
        e = dict(os.environ)
        e.update((k, v.replace("{}", n)) for k, v in env)
        p = subprocess.Popen([a.replace("{}", n) for a in args], env=e, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=errf, start_new_session=True)
        try:
            rc = p.wait(timeout=limit)
            return "exited %d" % rc if rc >= 0 else "killed by signal %d" % -rc
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            return "hung (killed after %g s)" % limit

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        got = collections.Counter(pool.map(one, range(1, runs + 1)))
    print("%d runs: %s" % (runs, ", ".join("%d %s" % (c, s) for s, c in sorted(got.items()))))
    return 0 if got == {"exited %d" % want: runs} else 1


if __name__ == "__main__":
    sys.exit(main())
