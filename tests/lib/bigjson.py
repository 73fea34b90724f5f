"""Reports read by the tests' checks (jsonq.py, advcheck.py, glossary.py): a report of a Python
run is 60 MB of JSON, 170 MB of Python objects once read.  Each new page of a process is a page
fault, and on a virtual machine a fault costs tens of microseconds: most of the CPU of reading
such a report went to the kernel.  A check given more than BIG bytes of JSON starts itself again
with Python's objects in glibc's malloc (PYTHONMALLOC=malloc) and glibc's heap in transparent huge
pages where the kernel gives them on request (GLIBC_TUNABLES=glibc.malloc.hugetlb=1): 1.34 ->
0.44 CPU-s for a 56 MB report.  What is read, and how, is the same; where the kernel has no huge
pages nothing changes.  A small report is read as it is (the second start would cost more).

usage: bigjson.reexec_if_big(PATH...) first thing in main(), or bigjson.reexec()
"""
import os
import sys

BIG = 4 << 20
MARK = "PFS_BIGJSON"


def reexec_if_big(*paths):
    if os.environ.get(MARK):
        return
    size = 0
    for p in paths:
        try:
            size += os.path.getsize(p)
        except OSError:
            pass
    if size > BIG:
        reexec()


def reexec():
    """Starts this program again with the settings for big reports (a long-lived reader of many
    reports, jsonq.py --serve, starts with them)."""
    if os.environ.get(MARK):
        return
    env = dict(os.environ)
    env[MARK] = "1"
    env["PYTHONMALLOC"] = "malloc"
    tun = env.get("GLIBC_TUNABLES")
    env["GLIBC_TUNABLES"] = (tun + ":" if tun else "") + "glibc.malloc.hugetlb=1"
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)
