#!/usr/bin/env python3
"""Checks `pfshim advise` as a user relies on it (issue 18), against the run's own report.

usage: advcheck.py REPORT.json ADVICE.json [VERIFY.json WITHOUT.json PLAIN.json]

- no rule names an allocator's or a language runtime's function or object (a list of
  their names kept here, apart from the analyzer's own);
- no rule is shadowed: for every advised site with a rule, no rule before its own in the
  policy would act on the site's allocations where its own does (the shim's matcher read over the report:
  site= against every frame's function and symbol, module= against the object of the
  allocator's caller, size>= against the site's largest allocation, kind=);
- every "sparse" agrees with the evidence (under a quarter touched, 4 MiB or more), and
  no populate rule goes to a site whose evidence says sparse;
- with VERIFY.json (advise --verify --format json), WITHOUT.json (the report of its run
  without the policy, kept by -o: -n 1) and PLAIN.json again: each site's row carries that
  site's own first-touch faults in that run (found by its kind and frames, as verify finds
  it), not the process's total.
Exit 1 with what failed.
"""
import fnmatch
import json
import sys

import bigjson

# Allocators and runtimes: what a rule must never name (globs over names).
RUNTIME_FUNCTIONS = [
    "malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "memalign",
    "valloc", "pvalloc", "__libc_*", "_int_*", "sysmalloc", "mmap", "mmap64", "__mmap",
    "mremap", "brk", "sbrk", "je_*", "mi_*", "tc_*", "operator new*", "operator delete*",
    "std::*", "__gnu_cxx::*", "_Znwm", "_Znam", "_Znw*", "_Zna*", "_ZNSt*", "__cxa_*",
    "PyObject_*", "_PyObject_*", "PyMem_*", "_PyMem_*", "PyType_GenericAlloc", "Py*_New*",
    "PyBytes_*", "PyByteArray_*", "PyList_*", "PyUnicode_*", "new_arena", "pymalloc_*",
    "xmalloc", "xcalloc", "xrealloc", "g_malloc*", "zmalloc*", "emalloc",
]
RUNTIME_MODULES = ["libc.so*", "libstdc++.so*", "libc++*", "ld-linux*", "libpthread*",
                   "libpython*", "python3*", "python2*", "libjemalloc*", "libtcmalloc*",
                   "libmimalloc*"]


def fail(msg):
    print("advcheck: " + msg)
    sys.exit(1)


def unglob(g):
    """The name a glob was made from: escapes removed ('?' and '*' kept)."""
    out, i = "", 0
    while i < len(g):
        if g[i] == "\\" and i + 1 < len(g):
            out += g[i + 1]
            i += 2
        else:
            out += g[i]
            i += 1
    return out


def parse_rule(rule):
    actions, _, conds = rule.partition(" if ")
    out = {"actions": actions, "site": None, "module": None, "size": 0, "kind": None}
    for c in conds.split(","):
        key, _, val = c.partition("=")
        if key == "site":
            out["site"] = val
        elif key == "module":
            out["module"] = val
        elif key == "size>":
            out["size"] = size_of(val)
        elif key == "kind":
            out["kind"] = val
    return out


def size_of(v):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(v[:-1]) * mult[v[-1]] if v[-1] in mult else int(v)


def match(glob, s):
    # fnmatch's [ ] and escapes as the shim's fnmatch(3) reads them, close enough for names
    return s is not None and fnmatch.fnmatchcase(s, glob.replace("\\[", "[[]").replace("\\]", "[]]")
                                                 .replace("\\*", "[*]").replace("\\?", "[?]"))


def reaches(rule, site):
    """Whether the shim would apply `rule` to some allocation of `site` (a report JSON site)."""
    ev = site.get("evidence") or {}
    if not ev.get("tracked_allocations"):
        return False
    if rule["kind"] and site["kind"] != rule["kind"]:
        return False
    largest = ev["max_size"]
    if rule["size"] and largest < rule["size"]:
        return False
    frames = site.get("frames") or []
    if rule["site"] and not any(match(rule["site"], f.get("function")) or match(rule["site"], f.get("symbol"))
                                for f in frames):
        return False
    if rule["module"] and not (frames and match(rule["module"], frames[0].get("module"))):
        return False
    return bool(rule["site"] or rule["module"])


def main():
    bigjson.reexec_if_big(*sys.argv[1:5])
    rep = json.load(open(sys.argv[1]))
    adv = json.load(open(sys.argv[2]))
    sites = [s for p in rep["processes"] for s in p["sites"]]
    by_id = {}
    for s in sites:
        by_id.setdefault(s["id"], []).append(s)
    rules = [r for r in adv["policy"].split("; ") if r]
    parsed = [parse_rule(r) for r in rules]

    frame_names = {f.get(k) for s in sites for f in s.get("frames") or [] for k in ("function", "symbol")} - {None}
    for r in parsed:
        if r["site"]:
            name = unglob(r["site"]).replace("?", " ")
            for g in RUNTIME_FUNCTIONS:
                if fnmatch.fnmatchcase(name, g):
                    fail("a rule names a runtime's function: site=%s (%s)" % (r["site"], g))
            # and it names no frame of the run that is a runtime's
            for n in frame_names:
                if match(r["site"], n) and any(fnmatch.fnmatchcase(n, g) for g in RUNTIME_FUNCTIONS):
                    fail("a rule names a runtime's function: site=%s matches %s" % (r["site"], n))
        if r["module"]:
            name = unglob(r["module"]).rstrip("*")
            for g in RUNTIME_MODULES:
                if fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(name + "so", g):
                    fail("a rule names a runtime's object: module=%s (%s)" % (r["module"], g))

    for a in adv["advice"]:
        if a["rule"] is None:
            continue
        if a["rule"] not in rules:
            fail("site #%d's rule is not in the policy: %s" % (a["site"], a["rule"]))
        k = rules.index(a["rule"])
        if a.get("rule_index") is not None and a["rule_index"] != k:
            fail("site #%d: rule_index %s, but its rule is the policy's %d" % (a["site"], a["rule_index"], k))
        # the processes where the site allocates (a forked child only inherits the parent's blocks)
        mine = [s for s in by_id.get(a["site"], []) if reaches(parsed[k], s)]
        if not mine:
            fail("site #%d's own rule would not act on it: %s" % (a["site"], a["rule"]))
        for s in mine:
            for i in range(k):
                if reaches(parsed[i], s):
                    fail("rule %d (%s) shadows rule %d (%s) on site #%d" % (i, rules[i], k, rules[k], a["site"]))

    for a in adv["advice"]:
        ev = a["evidence"]
        share = ev.get("touched_share")
        sparse_ev = share is not None and share < 0.25
        if a["advice"] == "sparse" and not sparse_ev:
            fail("site #%d is called sparse, its evidence says %r touched" % (a["site"], share))
        if a["advice"] == "sparse" and ev["requested_bytes"] < (4 << 20):
            fail("site #%d is called sparse with %d bytes" % (a["site"], ev["requested_bytes"]))
        if sparse_ev and a["rule"] and "populate" in a["rule"].partition(" if ")[0]:
            fail("site #%d is sparse by its evidence, and advised %s" % (a["site"], a["rule"]))
        for i, r in enumerate(parsed):
            if "populate" in r["actions"] and sparse_ev and \
                    any(reaches(r, s) for s in by_id.get(a["site"], [])):
                fail("rule %s would populate site #%d, sparse by its evidence" % (rules[i], a["site"]))

    if len(sys.argv) > 5:
        ver = json.load(open(sys.argv[3]))
        without = json.load(open(sys.argv[4]))
        plain = json.load(open(sys.argv[5]))

        def identity(s):
            # a site across runs, as verify finds it (pfs_report_site_key): its kind and frames
            parts = [s["kind"]]
            if not s["frames"]:
                parts.append(s["label"]["function"])
            for f in s["frames"]:
                if f.get("function"):
                    parts.append("%s@%s:%s" % (f["function"], f.get("file") or "", f.get("line") or 0))
                else:
                    parts.append("%s+%s" % (f.get("module"), f.get("offset") or f.get("address")))
            return tuple(parts)

        of_id = {s["id"]: identity(s) for p in plain["processes"] for s in p["sites"]}
        own = {}
        for s in (s for p in without["processes"] for s in p["sites"]):
            own[identity(s)] = own.get(identity(s), 0) + s["first_touch_faults"]
        total = sum(p["totals"]["first_touch_faults"] for p in without["processes"])
        for row in ver["sites"]:
            got = row["without"]["first_touch_faults"]
            if row["site"] not in of_id:
                fail("verify: site #%d is not in the plain run's report" % row["site"])
            want = own.get(of_id[row["site"]], 0)
            if got != want:
                fail("verify: site #%d's row says %d first-touch faults without the policy, the site has %d "
                     "(the process total: %d)" % (row["site"], got, want, total))
        if ver["total"]["without"]["first_touch_faults"] != total:
            fail("verify: the total line says %d, the run %d" % (ver["total"]["without"]["first_touch_faults"], total))
    print("advcheck: %d rules, %d advised sites: named, ordered, sparse as the evidence says" %
          (len(rules), len(adv["advice"])))


if __name__ == "__main__":
    main()
