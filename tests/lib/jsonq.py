#!/usr/bin/env python3
"""Asserts on a `pfshim report --format json` document.

usage: jsonq.py REPORT.json EXPR...   each EXPR is a Python expression over
`r` (the report) and the helpers below; exit 1 with the failing expression.
An EXPR written "=EXPR" is not checked: its value is printed (for a test to
derive an expectation from, or to say what it found).
"""
import ast
import json
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


def main():
    bigjson.reexec_if_big(sys.argv[1])
    r = json.load(open(sys.argv[1]))
    env = dict(r=r, procs=procs, proc=proc, sites=sites, site=site, kind_faults=kind_faults, abs=abs,
               len=len, sum=sum, any=any, all=all, max=max, min=min, round=round)
    for expr in sys.argv[2:]:
        if expr.startswith("="):
            print(eval(expr[1:], env))
            continue
        try:
            ok = eval(expr, env)
        except Exception as e:  # an assertion helper failing is a failed check
            print("  check failed: %s: %s" % (expr, e))
            sys.exit(1)
        if not ok:
            print("  check failed: %s%s" % (expr, found(expr, env)))
            sys.exit(1)


if __name__ == "__main__":
    main()
