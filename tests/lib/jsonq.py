#!/usr/bin/env python3
"""Asserts on a `pfshim report --format json` document.

usage: jsonq.py REPORT.json EXPR...   each EXPR is a Python expression over
`r` (the report) and the helpers below; exit 1 with the failing expression.
       jsonq.py --serve TOKEN_FILE       the same checks for a whole suite (serve(), below)
An EXPR written "=EXPR" is not checked: its value is printed (for a test to
derive an expectation from, or to say what it found).
"""
import ast
import json
import os
import re
import sys

import bigjson


def procs(r, command=None):
    """Processes, optionally those whose command line contains `command`."""
    return [p for p in r["processes"] if command is None or command in (p.get("command") or "")]


def proc(r, command=None):
    ps = procs(r, command)
    if len(ps) != 1:
        raise AssertionError("expected one process matching %r, found %d" % (command, len(ps)))
    return ps[0]


def sites(p, function):
    """Sites of process p whose frames[0] is `function`."""
    return [s for s in p["sites"] if s["frames"] and s["frames"][0].get("function") == function]


def site(p, function):
    ss = sites(p, function)
    if len(ss) != 1:
        raise AssertionError("expected one site with frames[0] %r, found %d: %s" % (
            function, len(ss), [s["frames"][0].get("function") for s in p["sites"] if s["frames"]]))
    return ss[0]


def kind_faults(p, kind, module=None):
    """First-touch faults of process p's sites of `kind` (memory accounted by kind), of one module's if given."""
    return sum(s["first_touch_faults"] for s in p["sites"] if s["kind"] == kind and (
        module is None or ((s.get("label") or {}).get("module") or "") == module))


def found(expr, env):
    """For a failed comparison: the values of its operands, as " (found: A, B)"."""
    try:
        tree = ast.parse(expr, mode="eval").body
        if not isinstance(tree, ast.Compare):
            return ""
        parts = [tree.left] + tree.comparators
        return " (found: %s)" % ", ".join(
            repr(eval(compile(ast.Expression(p), "<expr>", "eval"), env)) for p in parts)
    except Exception:  # only a help for the reader
        return ""


def check(path, exprs):
    """The checks of one report: (exit status, what is printed)."""
    r = json.load(open(path))
    env = dict(r=r, procs=procs, proc=proc, sites=sites, site=site, kind_faults=kind_faults, abs=abs,
               len=len, sum=sum, any=any, all=all, max=max, min=min, round=round, re=re)
    out = []
    for expr in exprs:
        if expr.startswith("="):
            out.append("%s\n" % (eval(expr[1:], env),))
            continue
        try:
            ok = eval(expr, env)
        except Exception as e:  # an assertion helper failing is a failed check
            out.append("  check failed: %s: %s\n" % (expr, e))
            return 1, "".join(out)
        if not ok:
            out.append("  check failed: %s%s\n" % (expr, found(expr, env)))
            return 1, "".join(out)
    return 0, "".join(out)


def serve(token_file):
    """Answers checks over TCP on 127.0.0.1 (bash's /dev/tcp: no process a check) until stdin ends.

    Prints its port, and at the end its CPU-seconds.  A request: the contents of token_file (a file only the suite's user can
    read), the client's working directory, the number of words, the words (REPORT EXPR...), each
    ended by a NUL; the answer: the exit status, stdout and stderr of `jsonq.py REPORT EXPR...`,
    each ended by a NUL.  A check that raises answers status 1 with its traceback, as jsonq.py's
    own run would."""
    import hmac
    import socketserver
    import threading
    import traceback

    bigjson.reexec()
    token = open(token_file, "rb").read().strip()

    class Check(socketserver.StreamRequestHandler):
        def word(self):
            w = bytearray()
            while True:
                c = self.rfile.read(1)
                if not c:
                    raise EOFError
                if c == b"\0":
                    return bytes(w)
                w += c

        def handle(self):
            try:
                if not hmac.compare_digest(self.word(), token):
                    return
                cwd = self.word().decode()
                words = [self.word().decode() for _ in range(int(self.word()))]
            except (EOFError, ValueError, UnicodeDecodeError):
                return
            err = ""
            try:
                rc, out = check(os.path.join(cwd, words[0]), words[1:])
            except Exception:
                rc, out, err = 1, "", traceback.format_exc()
            self.wfile.write(("%d\0%s\0%s\0" % (rc, out, err)).encode(errors="replace"))

    class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Check)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    t = os.times()
    try:
        print("%.1f" % (t.user + t.system), flush=True)
    except BrokenPipeError:  # the runner ended without asking (no test to run)
        pass


def main():
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
        return
    bigjson.reexec_if_big(sys.argv[1])
    rc, out = check(sys.argv[1], sys.argv[2:])
    sys.stdout.write(out)
    sys.exit(rc)


if __name__ == "__main__":
    main()
