# The fault oracle (tools/faultcheck, docs/fidelity.md): the kernel's own count of the faults in
# each allocation of a test program whose faults follow from its code, set beside pfshim's.
# Both sides must give the program's numbers: the oracle is tested, and the shim against it.

# faultcheck_run NAME ARGS...: tools/faultcheck --json into $WORK/NAME.fc; returns 2 when the
# kernel's tracepoints cannot be used here (the reason in $WORK/NAME.fc.err).
faultcheck_run() {
	local name=$1
	shift
	(cd "$WORK" && "$ROOT/tools/faultcheck" --json --min 0 --lib "$LIB" --cli "$CLI" "$@" \
		>"$WORK/$name.fc" 2>"$WORK/$name.fc.err")
	case $? in
	0) return 0 ;;
	3) return 2 ;;
	*) echo "  faultcheck failed:"; tail -5 "$WORK/$name.fc.err"; return 1 ;;
	esac
}

# faultcheck_sites FILE MODE PROCESS FUNCTION...: for each function's site in that run and
# process ("1" the command, "1.1" its first child), "kernel ft/cow pfshim ft/cow".
faultcheck_sites() {
	$PY - "$@" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
procs = [p for p in r["runs"][sys.argv[2]]["processes"] if p["key"] == sys.argv[3]]
for f in sys.argv[4:]:
    s = [s for p in procs for s in p["sites"] if s["site"].startswith(f + " ")]
    print(f, " ".join("%d/%d %s" % (x["kernel"]["ft"], x["kernel"]["cow"],
                                    "%d/%d" % (x["pfshim"]["ft"], x["pfshim"]["cow"]) if x["pfshim"] else "-") for x in s) or "none")
PY
}

# faultcheck_expect FILE MODE PROCESS "FUNCTION KERNEL PFSHIM"...: each site as expected.
faultcheck_expect() {
	local file=$1 mode=$2 proc=$3 line got
	shift 3
	for line in "$@"; do
		got=$(faultcheck_sites "$file" "$mode" "$proc" "${line%% *}")
		[ "$got" = "$line" ] || { echo "  $mode, process $proc: expected '$line', got '$got'"; return 1; }
	done
}

faultcheck_skip() {
	skip "faultcheck: $(sed 's/^faultcheck: //' "$WORK/$1.fc.err" | head -1)"
}

# faultcheck_process_ratio NAME PROGRAM RATIO LEAST: a program of one process, both modes:
# pfshim's first touches of private anonymous memory within RATIO of the kernel's, which are at
# least LEAST.
faultcheck_process_ratio() {
	local name=$1 prog=$2 ratio=$3 least=$4 m
	faultcheck_run "$name" --no-native -- "$prog"
	case $? in 2) faultcheck_skip "$name" ;; 1) return 1 ;; esac
	for m in fast exact; do
		$Q "$WORK/$name.fc" "abs(r['runs']['$m']['processes'][0]['ratio']['ft'] - 1) <= $ratio" \
			"r['runs']['$m']['processes'][0]['anon']['ft'] >= $least" || { echo "  in $m mode"; return 1; }
	done
}

# First touches, both modes: 100 pages of a malloc'd block, 37 + 10 of a mapping (read and
# written, dropped and touched again), 25 of a block freed at once (tests/preload/touch_pages.c).
t_faultcheck_first_touch_per_site() {
	faultcheck_run fcpages -- "$T/touch_pages" 100 37
	case $? in 2) faultcheck_skip fcpages ;; 1) return 1 ;; esac
	local m
	for m in fast exact; do
		faultcheck_expect "$WORK/fcpages.fc" $m 1 "malloc_site 100/0 100/0" "mmap_site 47/0 47/0" \
			"quick_site 25/0 25/0" || return 1
	done
	# The native run is there too, with the same process, and the output was the same in each run.
	$Q "$WORK/fcpages.fc" 'r["same_output"]' 'r["runs"]["native"]["processes"][0]["anon"]["ft"] >= 100 + 47 + 25' \
		'r["runs"]["fast"]["processes"][0]["native"] is not None'
}

# Copy-on-write after fork (tests/preload/touch_cow.c): the parent touches 20 + 4 pages of a
# mapping and writes 3 present at the fork; the child touches 5, writes 7 of the mapping and 4
# of a malloc'd block, all present at the fork.
t_faultcheck_cow_per_site() {
	faultcheck_run fccow -- "$T/touch_cow"
	case $? in 2) faultcheck_skip fccow ;; 1) return 1 ;; esac
	local m
	for m in fast exact; do
		faultcheck_expect "$WORK/fccow.fc" $m 1 "cow_site 24/3 24/3" "cow_malloc_site 8/0 8/0" || return 1
		faultcheck_expect "$WORK/fccow.fc" $m 1.1 "cow_site 5/7 5/7" "cow_malloc_site 0/4 0/4" || return 1
	done
}

# fork while 3 other threads wait (tests/preload/fork_descriptors.c): before any fork handler runs,
# the fork itself writes in the child each thread's descriptor (glibc marks them free) and its own
# (the kernel stores its thread id); those copies and the child's 6 writes to desc_site's mapping
# are all counted, both modes.  One malloc arena: each thread's own arena, written by the fork in
# the child too (its lock), is not followed (docs/fidelity.md).  No restartable sequences: the
# kernel's store to the forking thread's struct rseq in the child is uncounted where it lies on a
# page of its own (docs/fidelity.md), which a few bytes more of static TLS decide (the shim's
# libunwind's 16 moved it off the thread id's page here).
t_faultcheck_fork_writes_descriptors() {
	GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.pthread.rseq=0 faultcheck_run fcdesc --no-native -- "$T/fork_descriptors"
	case $? in 2) faultcheck_skip fcdesc ;; 1) return 1 ;; esac
	local m child
	for m in fast exact; do
		child="[p for p in r['runs']['$m']['processes'] if p['key'] == '1.1'][0]"
		$Q "$WORK/fcdesc.fc" "$child['anon']['cow'] >= 6 + 3" \
			"$child['pfshim']['anon']['cow'] == $child['anon']['cow']" ||
			{ echo "  in $m mode"; faultcheck_sites "$WORK/fcdesc.fc" $m 1.1 desc_site; return 1; }
	done
}

# --check names each judged process that is off, and judges none below its thresholds; exact mode's
# run totals may differ from the native run's by the ratio, or from the span of several native runs.
t_faultcheck_check_names_the_process() {
	$PY - "$ROOT/tools/faultcheck" <<'PY'
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.SourceFileLoader("faultcheck", sys.argv[1])
fc = importlib.util.module_from_spec(importlib.util.spec_from_loader("faultcheck", loader))
loader.exec_module(fc)
def proc(pid, kft, kcow, pft, pcow):
    return {"pid": pid, "command": "prog%d" % pid, "helper": False, "anon": {"ft": kft, "cow": kcow},
            "pfshim": {"anon": {"ft": pft, "cow": pcow}}}
tot = {"not_present": 1000, "write_present": 100, "by_shim_code": 0, "helpers": 0}
runs = {"native": {"lost_events": 0, "totals": tot, "processes": []},
        "fast": {"lost_events": 0, "totals": tot, "processes": [
            proc(1, 1000, 100, 1000, 100),  # exact
            proc(2, 1000, 100, 940, 100),   # 6 % short of first touches
            proc(3, 499, 49, 0, 0),         # too few faults to be judged
            proc(4, 1000, 100, 1000, 90)]}} # 10 % short of copy-on-write
fails = fc.check(runs, 0.05)
assert len(fails) == 2 and "pid 2 (prog2): first-touch" in fails[0] and "pid 4 (prog4): copy-on-write" in fails[1], fails
assert fc.check(runs, 0.11) == [], fc.check(runs, 0.11)
# Exact mode's run totals against the native runs': the spread between two native runs is allowed.
def totals(np):
    return {"not_present": np, "write_present": 50, "by_shim_code": 0, "helpers": 0}
runs = {"native": {"lost_events": 0, "totals": totals(9000), "totals_all": [totals(9000), totals(9800)], "processes": []},
        "exact": {"lost_events": 0, "totals": totals(10200), "processes": []}}
assert fc.check(runs, 0.05) == [], fc.check(runs, 0.05)
runs["exact"]["totals"] = totals(10400)
fails = fc.check(runs, 0.05)
assert len(fails) == 1 and "native 9000 to 9800 (2 runs), exact 10400" in fails[0], fails
del runs["native"]["totals_all"]
runs["exact"]["totals"] = totals(9800)
assert "native 9000, exact 9800" in fc.check(runs, 0.05)[0], fc.check(runs, 0.05)
PY
}

# The shim's own ranges ([pfshim], set apart from the program's memory) by time: a page of one is
# the program's while a program's allocation holds it.  git pack-objects's threads' site caches
# and the program's blocks took the same places in turn: the program's first touches there were
# taken for the shim's (1.05 of the kernel's count in both modes).  The oracle's rule, on a made
# log: a program's block at a page, freed, then the shim's range there; a fault in each life.
t_faultcheck_own_ranges_by_time() {
	$PY - "$ROOT/tools" <<'PY'
import importlib.machinery, importlib.util, sys, types
sys.path.insert(0, sys.argv[1])
import kfaults, pfslogs
loader = importlib.machinery.SourceFileLoader("faultcheck", sys.argv[1] + "/faultcheck")
fc = importlib.util.module_from_spec(importlib.util.spec_from_loader("faultcheck", loader))
loader.exec_module(fc)
P = kfaults.PAGE
log = pfslogs.Image(7, 0, 0, "made")
block = pfslogs.Alloc(100, 64 * P, 4 * P, 3, 5)  # the program's mapping, pages 64-67, freed at 200
block.t_free = 200
log.add(block)
log.add(pfslogs.Alloc(300, 64 * P, 4 * P, 0, 13, True))  # the shim's own there after
log.index()
ident = types.SimpleNamespace(id=1)
faults = [(150, 65 * P, "ft", ident, "prog"), (350, 66 * P, "ft", ident, "libpfshim.so"),
          (160, 66 * P, "ft", ident, "prog")]
counts = {c: {"ft": 0, "cow": 0} for c in kfaults.CATEGORIES}
counts["anon"] = dict({w: 0 for w in fc.WRITES}, ft=3)
im = types.SimpleNamespace(counts=counts, anon_faults=faults, idents=[], key="1", match=None, pid=7, ppid=1,
                           comm="prog", exec_comm="prog", exe="/prog", kernel_side=0)
res = fc.analyze_image(im, log, None, {"libpfshim.so"}, 5, 0)
assert res["kernel_own"] == {"ft": 1, "cow": 0} and res["anon"]["ft"] == 2, (res["kernel_own"], res["anon"])
PY
}

# A heap glibc trims and grows again inside free (tests/preload/heap_trim_small.c: 20 rounds of
# 256 small blocks written and freed): the oracle shows the heap's first touches of pages touched
# before ("again", every round after the first), and pfshim counts them all in both modes.
t_faultcheck_heap_touched_again() {
	faultcheck_run fctrim -- "$T/heap_trim_small"
	case $? in 2) faultcheck_skip fctrim ;; 1) return 1 ;; esac
	local m
	for m in fast exact; do
		$Q "$WORK/fctrim.fc" \
			"[g for g in r['runs']['$m']['processes'][0]['regions'] if g['kind'] == 'heap'][0]['ft_again'] >= 19 * 150" \
			"abs(r['runs']['$m']['processes'][0]['ratio']['ft'] - 1) <= 0.05" || { echo "  in $m mode"; return 1; }
	done
}

# A program that starts itself with posix_spawn (tests/preload/spawn_self.c; glibc's is a vfork
# child that execs at once, as Python's multiprocessing spawn): the child's image before the exec
# has its parent's executable and no report of its own; the report is the exec'd image's, where
# the child's 200 pages are.
t_faultcheck_spawned_copy_of_itself() {
	faultcheck_run fcspawn --mode fast --no-native -- "$T/spawn_self"
	case $? in 2) faultcheck_skip fcspawn ;; 1) return 1 ;; esac
	faultcheck_expect "$WORK/fcspawn.fc" fast 1.1@1 "child_site 200/0 200/0" || return 1
	$Q "$WORK/fcspawn.fc" '[p["key"] for p in r["runs"]["fast"]["processes"] if p["pfshim"] is None] == ["1.1"]'
}

# Shared memory is no private anonymous memory (the kernel files it `other`): pfshim's `shared`
# sites stay out of the comparison, as file mappings do (tests/preload/shared_workers.c: 16,384
# shared pages written by the parent and by each of 4 workers).  postgres --single's shared
# buffers read as 1.56 times the kernel's first touches before.
t_faultcheck_shared_memory_kept_apart() {
	faultcheck_run fcshared --mode fast --no-native -- "$T/shared_workers"
	case $? in 2) faultcheck_skip fcshared ;; 1) return 1 ;; esac
	$Q "$WORK/fcshared.fc" 'len(r["runs"]["fast"]["processes"]) == 5' \
		'all(abs(p["pfshim"]["anon"]["ft"] - p["anon"]["ft"]) <= 8 for p in r["runs"]["fast"]["processes"])' \
		'all(p["pfshim"]["kinds"]["shared"]["ft"] >= 16384 for p in r["runs"]["fast"]["processes"])'
}

# realloc copies a heap block into a new mapping of its own (tests/preload/realloc_copy.c: 2 MiB
# copied inside realloc, then 1 MiB written): the copy's pages are the realloc site's first
# touches (pfshim took them for the new mapping's baseline: 256 of 769, the process 0.60 of the
# kernel's count), both modes.  The kernel's per-site count cannot say it: the copy's faults
# come before the allocation's record, so the process's total is compared.
t_faultcheck_realloc_copies_into_a_mapping() {
	faultcheck_run fcrcopy --no-native -- "$T/realloc_copy"
	case $? in 2) faultcheck_skip fcrcopy ;; 1) return 1 ;; esac
	local m
	for m in fast exact; do
		faultcheck_sites "$WORK/fcrcopy.fc" $m 1 grow_site | grep -q '^grow_site [0-9]*/0 769/0$' || {
			echo "  $m: $(faultcheck_sites "$WORK/fcrcopy.fc" $m 1 grow_site), pfshim's should be 769/0"; return 1; }
		$Q "$WORK/fcrcopy.fc" "abs(r['runs']['$m']['processes'][0]['ratio']['ft'] - 1) <= 0.02" || {
			echo "  in $m mode"; return 1; }
	done
}

# The oracle follows mremap (its tracepoints; it has no MMAP2 record): an anonymous block moved
# with MREMAP_FIXED where a file mapping had been, and grown there (tests/preload/mremap_over_file.c:
# 1,024 pages written) is private anonymous memory, not the file's (the process read 14.9 times the
# kernel's count before).
t_faultcheck_follows_mremap() {
	faultcheck_process_ratio fcmremap "$T/mremap_over_file" 0.02 1024
}

# Another allocator (jemalloc, linked) serving memory before the shim started
# (tests/preload/opt_jemalloc_early.c: a 1 MiB block written by .preinit_array, another by main):
# its extent, mapped before the shim, is carved by its blocks later, and the pages it held when
# the shim started are first touches too (7 of the kernel's 303 before; tcmalloc linked into a
# program: 0.907).
t_faultcheck_other_allocator_before_start() {
	faultcheck_process_ratio fcjeearly "$T/opt_jemalloc_early" 0.05 256
}

# The brk heap made before the shim started (tests/preload/ctor_stdio_fork.c: a library's
# constructor reads a file through stdio), its first page written after each of 60 forks: the
# parent's copies counted in both modes, after the free of the constructor's 4 KiB stdio buffer
# on that page (60 of the kernel's 121 before: the free took the page out of the tracked memory;
# bash's parent 0.90).
t_faultcheck_heap_from_before_start_copied() {
	faultcheck_run fcprecow --no-native -- "$T/ctor_stdio_fork"
	case $? in 2) faultcheck_skip fcprecow ;; 1) return 1 ;; esac
	local m p
	for m in fast exact; do
		p="r['runs']['$m']['processes'][0]"
		$Q "$WORK/fcprecow.fc" "$p['anon']['cow'] >= 60" "abs($p['ratio']['cow'] - 1) <= 0.05" ||
			{ echo "  in $m mode"; return 1; }
	done
}

# Exact mode by userfaultfd (PFSHIM_MODE=uffd, where the kernel's fault events are refused) counts
# what a range held when it was registered as first touches where fast mode does: realloc's copy
# into a new mapping (tests/preload/realloc_copy.c: 0.596 of the kernel's first touches before) and
# memory made before the shim started (tests/preload/opt_jemalloc_early.c: 0.987; ctor_early 0.779
# before).
t_faultcheck_uffd_counts_what_was_held() {
	local prog least
	for prog in "realloc_copy 1024" "opt_jemalloc_early 256"; do
		least=${prog#* }
		prog=${prog%% *}
		faultcheck_run "fcu$prog" --mode uffd --no-native -- "$T/$prog"
		case $? in 2) faultcheck_skip "fcu$prog" ;; 1) return 1 ;; esac
		$Q "$WORK/fcu$prog.fc" "abs(r['runs']['uffd']['processes'][0]['ratio']['ft'] - 1) <= 0.05" \
			"r['runs']['uffd']['processes'][0]['anon']['ft'] >= $least" || { echo "  $prog"; return 1; }
	done
}

# Memory the kernel merged with an object's .bss (tests/preload/bss_merged.c: 64 pages mapped and
# written right after the program's memory image by .preinit_array, before the shim started):
# the program's first touches, not the object's data (4 of the kernel's 70 counted before, both
# modes: the merged mapping was taken whole as the .bss).  postgres's children: the loader's
# static TLS merged with libldap's .bss, 4 copies a child.
t_faultcheck_bss_ends_with_the_image() {
	"$T/bss_merged" | grep -q '^64 pages' || skip "the address after the program's image was taken"
	faultcheck_process_ratio fcbss "$T/bss_merged" 0.05 64
}

# The oracle's .bss: anonymous memory mapped right after a module's writable segment is its .bss
# only within the module's memory image, as the ELF file tells (libctorstdio.so has no .bss past
# its data's last page: the loader's static TLS mapped there at once is anonymous memory, which
# the oracle took for libldap's .bss in postgres), in either order of the records.
t_faultcheck_oracle_bss_from_the_elf() {
	$PY - "$ROOT/tools" "$T/libctorstdio.so" "$T/bss_merged" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import kfaults
lib, exe = sys.argv[2], sys.argv[3]
def kind(records, at):
    im = kfaults.Image(1, 0, 0, "1", "prog", 0)
    im.map(0x555500000000, 0x555500001000, "r--p", "/usr/bin/true", 500, 0)  # the executable, far below
    for r in records:
        im.map(*r)
    return im.find(at)[2].kind
B = 0x7f0000000000
data = (B + 0x3000, B + 0x5000, "rw-p", lib, 1000, 0x2000)  # its data segment, no .bss beyond
tls = (B + 0x5000, B + 0x7000, "rw-p", "//anon", 1200)
assert kind([data, tls], B + 0x5000) == "anon", kind([data, tls], B + 0x5000)
assert kind([tls, data], B + 0x5000) == "anon", kind([tls, data], B + 0x5000)
data = (B + 0x3000, B + 0x4000, "rw-p", exe, 1000, 0x2000)  # its .bss goes on to 0x15000
bss = (B + 0x4000, B + 0x15000, "rw-p", "//anon", 1200)
assert kind([data, bss], B + 0x4000) == "bss", kind([data, bss], B + 0x4000)
assert kind([bss, data], B + 0x4000) == "bss", kind([bss, data], B + 0x4000)
PY
}

# The oracle leaves out the kernel's exceptions with page faults disabled: generic_perform_write's
# copy_folio_from_iter_atomic fails on a page not present, and the kernel faults it in with
# fault_in_readable (one fault, and one exception each).  A page written from by write(2), on
# made records: one first touch, not two (postgres's backends: 226 of 302 such exceptions).
t_faultcheck_oracle_atomic_copies_no_faults() {
	$PY - "$ROOT/tools" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import kfaults
lines = [
    "prog 7/7 100.000000100: PERF_RECORD_COMM exec: prog:7/7",
    "prog 7/7 100.000000200: PERF_RECORD_MMAP2 7/7: [0x7f0000000000(0x4000) @ 0x7f0000000000 00:00 0 0]: rw-p //anon",
    "prog 7/7 100.000000300: exceptions:page_fault_kernel: address=0x7f0000001000 ip=copy_folio_from_iter_atomic error_code=0x0",
    "prog 7/7 100.000000400: exceptions:page_fault_kernel: address=0x7f0000001000 ip=fault_in_readable error_code=0x0",
    "prog 7/7 100.000000500: exceptions:page_fault_user: address=0x7f0000002000 ip=0x401000 error_code=0x6",
]
run = kfaults.parse_lines(lines, wrapper=False)
im = [i for i in run.images if i.pid == 7][-1]
assert im.counts["anon"]["ft"] == 2, im.counts["anon"]
PY
}
