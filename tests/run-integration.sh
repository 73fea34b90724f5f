#!/bin/bash
# Integration tests: real programs and small target programs under the shim.
# Each test compares the program's output and exit status with a plain run,
# then checks what `pfshim report` says.  Prints "N passed, N failed".
set -u
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$ROOT/$BUILD" 2>/dev/null && pwd || echo "$BUILD")
LIB=$BUILD/libpfshim.so
CLI=$BUILD/pfshim
T=$BUILD/tests/preload
Q="python3 $ROOT/tests/lib/jsonq.py"
WORK=$(mktemp -d /tmp/pfshim-it.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
pass=0
fail=0
failed=""

# run_as_nobody DIR NAME PROG ARGS...: copies the shim and PROG into DIR (0777, so nobody can write
# its logs there) and runs PROG there as nobody with logs in DIR/NAME; its stdout in DIR/NAME.out.
run_as_nobody() {
	local d=$1 name=$2 prog=$3
	shift 3
	mkdir -p "$d" && chmod 777 "$d" && chmod 755 "$WORK"
	install -m 0755 "$LIB" "$prog" "$d/"
	(cd "$d" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env PFSHIM_OUT="$d/$name" LD_PRELOAD="$d/libpfshim.so" "./$(basename "$prog")" "$@" \
		>"$d/$name.out" 2>"$d/$name.err") || { echo "  unprivileged run failed:"; cat "$d/$name.err"; return 1; }
}

# run_both NAME CMD...: runs CMD natively and under the shim (logs in $WORK/NAME, variables
# for the shim in $RUN_ENV),
# requires identical stdout and exit status, leaves the shim run's stderr in $WORK/NAME.err.
run_both() {
	local name=$1
	shift
	rm -rf "${WORK:?}/$name"
	(cd "$WORK" && timeout 120 "$@" >"$WORK/$name.native" 2>/dev/null)
	echo $? >"$WORK/$name.native.rc"
	# timeout itself runs untraced; only the program gets LD_PRELOAD
	(cd "$WORK" && env ${RUN_ENV:-} PFSHIM_OUT="$WORK/$name" timeout 120 sh -c 'LD_PRELOAD=$0 exec "$@"' "$LIB" "$@" \
		>"$WORK/$name.out" 2>"$WORK/$name.err")
	echo $? >"$WORK/$name.rc"
	if ! cmp -s "$WORK/$name.native" "$WORK/$name.out"; then
		echo "  output differs under the shim:"
		diff "$WORK/$name.native" "$WORK/$name.out" | head -5
		return 1
	fi
	if ! cmp -s "$WORK/$name.native.rc" "$WORK/$name.rc"; then
		echo "  exit status $(cat "$WORK/$name.rc") under the shim, $(cat "$WORK/$name.native.rc") without"
		return 1
	fi
}

# report NAME [FORMAT]: the analyzer's report of $WORK/NAME into $WORK/NAME.FORMAT
report() {
	local fmt=${2:-json}
	"$CLI" report --format "$fmt" "$WORK/$1" >"$WORK/$1.$fmt" 2>"$WORK/$1.$fmt.err"
	local rc=$?
	if [ $rc -ne 0 ]; then
		echo "  pfshim report exited $rc:"
		head -5 "$WORK/$1.$fmt.err"
	fi
	return $rc
}

t_three_sites() {
	run_both three $T/three_sites || return 1
	report three || return 1
	$Q "$WORK/three.json" \
		'r["mode"] == "fast"' \
		'len(r["processes"]) == 1' \
		'site(proc(r), "site_alpha")["allocations"] == 3' \
		'site(proc(r), "site_alpha")["bytes_allocated"] == 300' \
		'site(proc(r), "site_alpha")["kind"] == "malloc"' \
		'site(proc(r), "site_beta")["allocations"] == 5' \
		'site(proc(r), "site_beta")["bytes_allocated"] == 1000' \
		'site(proc(r), "site_gamma")["allocations"] == 7' \
		'site(proc(r), "site_gamma")["bytes_allocated"] == 2100' \
		'site(proc(r), "site_gamma")["kind"] == "calloc"' \
		'site(proc(r), "site_big")["allocations"] == 1' \
		'site(proc(r), "site_big")["bytes_allocated"] == 1 << 20' \
		'site(proc(r), "site_alpha")["frames"][0]["file"].endswith("three_sites.c")' \
		'site(proc(r), "site_alpha")["frames"][1]["function"] == "main"'
}

t_text_report_names_file_line() {
	run_both threetext $T/three_sites || return 1
	report threetext text || return 1
	grep -q 'site_alpha' "$WORK/threetext.text" && grep -Eq 'three_sites\.c:[0-9]+' "$WORK/threetext.text" || {
		echo "  text report lacks site_alpha with file:line"
		head -30 "$WORK/threetext.text"
		return 1
	}
}

t_summary_line() {
	(cd "$WORK" && PFSHIM_OUT="$WORK/sum" LD_PRELOAD=$LIB $T/three_sites >/dev/null 2>"$WORK/sum.err")
	grep -c '^pfshim: ' "$WORK/sum.err" | grep -qx 1 && grep -q "logs in $WORK/sum" "$WORK/sum.err" || {
		echo "  expected one summary line naming the directory:"
		cat "$WORK/sum.err"
		return 1
	}
	(cd "$WORK" && PFSHIM_QUIET=1 PFSHIM_OUT="$WORK/sumq" LD_PRELOAD=$LIB $T/three_sites >/dev/null 2>"$WORK/sumq.err")
	[ ! -s "$WORK/sumq.err" ] || { echo "  PFSHIM_QUIET=1 still printed:"; cat "$WORK/sumq.err"; return 1; }
}

t_sigkill_log_readable() {
	local dir=$WORK/killed
	mkfifo "$WORK/killed.fifo"
	PFSHIM_OUT=$dir LD_PRELOAD=$LIB $T/killed 1000 >"$WORK/killed.fifo" &
	local pid=$!
	read -t 60 -r line <"$WORK/killed.fifo"
	kill -KILL $pid
	wait $pid 2>/dev/null
	[ "$line" = "ready 1000" ] || { echo "  program said '$line'"; return 1; }
	report killed || return 1
	$Q "$WORK/killed.json" \
		'site(proc(r), "victim_site")["allocations"] == 1000' \
		'site(proc(r), "victim_site")["bytes_allocated"] == 64000' \
		'site(proc(r), "victim_big")["bytes_allocated"] == 256 * 1024'
}

t_fork_per_process() {
	run_both fork $T/forker || return 1
	report fork || return 1
	$Q "$WORK/fork.json" \
		'len(r["processes"]) == 2' \
		'sorted(p["pid"] for p in r["processes"])[0] in [p["ppid"] for p in r["processes"]]' \
		'[p for p in r["processes"] if sites(p, "child_site")][0]["ppid"] == [p for p in r["processes"] if sites(p, "parent_site")][0]["pid"]' \
		'sum(s["allocations"] for p in r["processes"] for s in sites(p, "parent_site")) == 11' \
		'sum(s["allocations"] for p in r["processes"] for s in sites(p, "child_site")) == 13' \
		'all(sum(s["allocations"] for s in sites(p, "parent_site")) == 0 or sum(s["allocations"] for s in sites(p, "child_site")) == 0 for p in r["processes"])'
}

t_threads_exact() {
	run_both threads $T/threads || return 1
	report threads || return 1
	local bytes
	bytes=$(python3 -c 'print(8 * sum(32 + i % 64 for i in range(20000)))')
	$Q "$WORK/threads.json" \
		'site(proc(r), "thread_site")["allocations"] == 160000' \
		"site(proc(r), \"thread_site\")[\"bytes_allocated\"] == $bytes"
}

t_spawn_family() {
	run_both spawn $T/spawner || return 1
	report spawn || return 1
	$Q "$WORK/spawn.json" 'len(r["processes"]) >= 3'
}

t_exec_chain() {
	run_both exec $T/exec_chain 3 || return 1
	report exec || return 1
	$Q "$WORK/exec.json" \
		'len(r["processes"]) == 4' \
		'len(set(p["pid"] for p in r["processes"])) == 1' \
		'all(site(p, "chain_site")["allocations"] == 9 for p in r["processes"])'
}

t_mappings_kinds() {
	run_both maps $T/mappings || return 1
	report maps || return 1
	$Q "$WORK/maps.json" \
		'site(proc(r), "map_anon_site")["kind"] == "mmap"' \
		'site(proc(r), "map_anon_site")["bytes_allocated"] == 8 << 20' \
		'site(proc(r), "map_file_site")["kind"] == "mmap-file"' \
		'all(s["kind"] == "aligned" for s in sites(proc(r), "aligned_site"))' \
		'sum(s["allocations"] for s in sites(proc(r), "aligned_site")) == 2' \
		'sum(s["bytes_allocated"] for s in sites(proc(r), "aligned_site")) == 1000 + 8192' \
		'site(proc(r), "realloc_site")["kind"] == "realloc"' \
		'site(proc(r), "realloc_site")["allocations"] == 4'
}

t_errno_kept() {
	run_both errno $T/errno_keep || return 1
	grep -qx 'errno kept' "$WORK/errno.out" || { cat "$WORK/errno.out"; return 1; }
}

t_fds_closed_and_replaced() {
	run_both fds $T/fd_hostile 50000 || return 1
	report fds || return 1
	$Q "$WORK/fds.json" \
		'site(proc(r), "hostile_site")["allocations"] == 50000' \
		'proc(r)["ended"] is True'
}

t_thread_churn() {
	run_both churn $T/thread_churn || return 1
	report churn || return 1
	$Q "$WORK/churn.json" 'site(proc(r), "churn_site")["allocations"] == 20000'
}

t_signal_handler_allocates() {
	run_both sig $T/signal_alloc || return 1
	grep -qx 'done, signals arrived' "$WORK/sig.out" || { cat "$WORK/sig.out"; return 1; }
	report sig || return 1
	$Q "$WORK/sig.json" 'site(proc(r), "loop_site")["allocations"] == 2000000'
}

t_fork_with_busy_threads() {
	run_both forkth $T/fork_threads || return 1
	report forkth || return 1
	$Q "$WORK/forkth.json" 'len(r["processes"]) == 31' \
		'sum(1 for p in r["processes"] if sites(p, "child_work")) == 30'
}

# Fast mode (the default): first touches counted exactly per site.
check_touch_pages() {
	$Q "$1" \
		'r["mode"] == "fast"' \
		'site(proc(r), "malloc_site")["first_touch_faults"] == 100' \
		'site(proc(r), "mmap_site")["first_touch_faults"] == 37 + 10' \
		'site(proc(r), "quick_site")["first_touch_faults"] == 25' \
		'proc(r)["totals"]["first_touch_faults"] == sum(s["first_touch_faults"] for s in proc(r)["sites"] if s["kind"] != "pfshim")'
}

t_fast_first_touch_exact() {
	run_both touch $T/touch_pages 100 37 || return 1
	report touch || return 1
	check_touch_pages "$WORK/touch.json"
}

t_fast_first_touch_unprivileged() {
	local d=$WORK/nobody
	run_as_nobody "$d" logs $T/touch_pages 100 37 || return 1
	grep -qx 'touched 100 + 37 + 10 + 25 pages' "$d/logs.out" || { cat "$d/logs.out"; return 1; }
	"$CLI" report --format json "$d/logs" >"$d/r.json" || return 1
	check_touch_pages "$d/r.json" || return 1
	run_as_nobody "$d" heap $T/heap_small || return 1
	"$CLI" report --format json "$d/heap" >"$d/h.json" || return 1
	$Q "$d/h.json" 'r["mode"] == "fast"' '390 <= site(proc(r), "small_site")["first_touch_faults"] <= 392'
}

t_fast_fork_each_process_counts_its_own() {
	run_both tfork $T/touch_fork || return 1
	report tfork || return 1
	$Q "$WORK/tfork.json" \
		'len(r["processes"]) == 2' \
		'[p for p in r["processes"] if p["pid"] not in [q["ppid"] for q in r["processes"]]][0]["ppid"] in [q["pid"] for q in r["processes"]]' \
		'site([p for p in r["processes"] if p["pid"] in [q["ppid"] for q in r["processes"]]][0], "shared_site")["first_touch_faults"] == 17' \
		'site([p for p in r["processes"] if p["pid"] not in [q["ppid"] for q in r["processes"]]][0], "shared_site")["first_touch_faults"] == 20' \
		'site([p for p in r["processes"] if p["pid"] not in [q["ppid"] for q in r["processes"]]][0], "shared_site")["allocations"] == 0'
}

t_fast_scanner_thread_sees_touches_over_time() {
	run_both tthr $T/touch_threads || return 1
	report tthr || return 1
	# 8 steps 40 ms apart with a 10 ms interval: the touches arrive in several passes, not one at the end
	$Q "$WORK/tthr.json" 'site(proc(r), "worker_site")["first_touch_faults"] == 400' 'proc(r)["scans"] >= 8'
}

# Processes of a fork pair: the parent (whose pid is another's ppid) and the child.
check_touch_cow() {
	$Q "$1" \
		'len(r["processes"]) == 2' \
		'site([p for p in r["processes"] if p["pid"] in [q["ppid"] for q in r["processes"]]][0], "cow_site")["first_touch_faults"] == 24' \
		'site([p for p in r["processes"] if p["pid"] in [q["ppid"] for q in r["processes"]]][0], "cow_site")["cow_faults"] == 3' \
		'site([p for p in r["processes"] if p["pid"] in [q["ppid"] for q in r["processes"]]][0], "cow_malloc_site")["first_touch_faults"] == 8' \
		'site([p for p in r["processes"] if p["pid"] in [q["ppid"] for q in r["processes"]]][0], "cow_malloc_site")["cow_faults"] == 0' \
		'site([p for p in r["processes"] if p["pid"] not in [q["ppid"] for q in r["processes"]]][0], "cow_site")["first_touch_faults"] == 5' \
		'site([p for p in r["processes"] if p["pid"] not in [q["ppid"] for q in r["processes"]]][0], "cow_site")["cow_faults"] == 7' \
		'site([p for p in r["processes"] if p["pid"] not in [q["ppid"] for q in r["processes"]]][0], "cow_malloc_site")["cow_faults"] == 4'
}

t_fast_cow_after_fork() {
	run_both cow $T/touch_cow || return 1
	report cow || return 1
	check_touch_cow "$WORK/cow.json"
}

t_fast_cow_unprivileged() {
	local d=$WORK/nobody-cow
	run_as_nobody "$d" logs $T/touch_cow || return 1
	"$CLI" report --format json "$d/logs" >"$d/r.json" || return 1
	check_touch_cow "$d/r.json"
}

t_fast_heap_pages_charged_to_carving_site() {
	run_both heap $T/heap_small || return 1
	report heap || return 1
	# 20,000 blocks of 64 B are 80 B chunks: 1,600,000 B of fresh heap, 391 or 392 pages by where the
	# first lands in its page, less that page when malloc had used it before the shim started (pre-start
	# memory, present already); blocks reusing freed chunks carve nothing; 1000 chunks of 208 B in a
	# thread's arena: 51 pages, 52-53 with the arena's header page that the first block's malloc touched.
	$Q "$WORK/heap.json" \
		'390 <= site(proc(r), "small_site")["first_touch_faults"] <= 392' \
		'site(proc(r), "small_site")["allocations"] == 20000' \
		'site(proc(r), "reuse_site")["first_touch_faults"] == 0' \
		'site(proc(r), "reuse_site")["allocations"] == 10000' \
		'51 <= site(proc(r), "thread_heap_site")["first_touch_faults"] <= 53'
}

t_fast_heap_cow_at_carving_site() {
	run_both heapcow $T/heap_cow || return 1
	report heapcow || return 1
	# 5000 chunks of 112 B: 560,000 B on 137 or 138 pages by where the first lands; the child
	# rewrites every block, so each page holding the table is copied once.  The parent may also
	# first-touch the page after the table (the top chunk's header, carved with the last block).
	$Q "$WORK/heapcow.json" \
		'137 <= site([p for p in r["processes"] if p["pid"] in [q["ppid"] for q in r["processes"]]][0], "table_site")["first_touch_faults"] <= 139' \
		'137 <= site([p for p in r["processes"] if p["pid"] not in [q["ppid"] for q in r["processes"]]][0], "table_site")["cow_faults"] <= 138'
}

# The fallback for kernels without PAGEMAP_SCAN, forced here: the same exact counts.
t_fast_pagemap_read_fallback() {
	RUN_ENV=PFSHIM_PAGEMAP=read run_both pmread $T/touch_pages 100 37 || return 1
	report pmread || return 1
	check_touch_pages "$WORK/pmread.json" || return 1
	RUN_ENV=PFSHIM_PAGEMAP=read run_both pmcow $T/touch_cow || return 1
	report pmcow || return 1
	check_touch_cow "$WORK/pmcow.json"
}

# THP-eligible memory keeps its huge pages under the shim (the output says whether it has them);
# a huge page appearing is 512 first touches: the whole 64 MiB region, touched, is 16384.
# ... and counts the faults as the kernel takes them: one per huge page, every base page in the pages.
t_fast_keeps_transparent_huge_pages() {
	run_both thp $T/thp || return 1
	report thp || return 1
	local k
	k=$(awk '$1 == "faults" {print $2}' "$WORK/thp.err")
	[ -n "$k" ] || { echo "  the program's fault count is missing"; return 1; }
	$Q "$WORK/thp.json" 'site(proc(r), "huge_site")["first_touch_pages"] == 16384' \
		"abs(site(proc(r), \"huge_site\")[\"first_touch_faults\"] - $k) <= 2"
}

# Copy-on-write tracking must not split huge pages: natively the parent's writes after the child is
# gone reuse them in place, and the program prints whether it still has them.
t_fast_fork_keeps_huge_pages() {
	run_both thpfork $T/thp_fork || return 1
	# Where the machine gives huge pages at all, the shim names the memory it did not track.
	if grep -q 'yes' "$WORK/thpfork.native"; then
		grep -q 'copy-on-write of .* transparent huge pages is not counted' "$WORK/thpfork.err" || {
			echo "  the skipped huge-page memory was not named:"; cat "$WORK/thpfork.err"; return 1; }
	fi
}

t_mode_off_counts_no_faults() {
	RUN_ENV=PFSHIM_MODE=off run_both off $T/touch_pages 100 37 || return 1
	report off || return 1
	$Q "$WORK/off.json" 'r["mode"] == "off"' 'proc(r)["totals"]["first_touch_faults"] == 0' \
		'site(proc(r), "malloc_site")["allocations"] == 1'
}

t_storm_example_names_its_site() {
	run_both storm $BUILD/examples/storm || return 1
	report storm || return 1
	# 64 MiB of 4 KiB pages, less the chunk header's page that malloc touched before returning.
	# With THP "always" huge pages blur the per-page count: then only a lower bound holds.
	# quiet_site: 1000 chunks of 80 B after the 656-byte tcache: bytes 0-80,655 of the heap, pages
	# 0-19; page 0 was touched already when the shim started (the shim's own start-up made the heap:
	# its setenv), so 19 first touches are quiet_site's.
	local expect='== 16383' quiet='== 19'
	grep -q '\[always\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null && expect='>= 16000' quiet='>= 18'
	$Q "$WORK/storm.json" \
		"site(proc(r), \"storm_site\")[\"first_touch_faults\"] $expect" \
		"site(proc(r), \"quiet_site\")[\"first_touch_faults\"] $quiet" \
		'proc(r)["sites"][0]["frames"][0]["function"] == "storm_site"' \
		'proc(r)["storms"][0]["top_site"] == site(proc(r), "storm_site")["id"]' || return 1
	report storm text || return 1
	grep -q 'storm_site (storm.c:' "$WORK/storm.text" || { head -30 "$WORK/storm.text"; return 1; }
}

t_bad_variable_one_line() {
	# Every variable with a bad value: one line each, the default kept, the program as without the shim.
	RUN_ENV="PFSHIM_MODE=bogus PFSHIM_SCAN_MS=-3 PFSHIM_QUIET=maybe PFSHIM_PAGEMAP=guess PFSHIM_TOUCH_SITE=2 PFSHIM_RUN=abc PFSHIM_SACN_MS=5" \
		run_both badvar $T/three_sites || return 1
	local v
	for v in "PFSHIM_MODE='bogus'" "PFSHIM_SCAN_MS='-3'" "PFSHIM_QUIET='maybe'" "PFSHIM_PAGEMAP='guess'" \
		"PFSHIM_TOUCH_SITE='2'" "PFSHIM_RUN='abc'" "unknown variable PFSHIM_SACN_MS"; do
		[ "$(grep -c "^pfshim: $v" "$WORK/badvar.err")" = 1 ] || {
			echo "  expected one line for $v:"; cat "$WORK/badvar.err"; return 1; }
	done
	[ "$(grep -c '^pfshim: ' "$WORK/badvar.err")" = 8 ] || { echo "  more lines than bad variables (and the summary):"; cat "$WORK/badvar.err"; return 1; }
	# A directory name longer than PATH_MAX: said once; the default directory is used.
	local long
	long=$(head -c 5000 /dev/zero | tr '\0' a)
	(cd "$WORK" && PFSHIM_QUIET=1 PFSHIM_OUT=$long LD_PRELOAD=$LIB $T/three_sites >"$WORK/longout.out" 2>"$WORK/longout.err")
	[ $? = 3 ] && [ "$(grep -c '^pfshim: PFSHIM_OUT is too long' "$WORK/longout.err")" = 1 ] || {
		echo "  long PFSHIM_OUT:"; cat "$WORK/longout.err"; return 1; }
}

t_unwritable_dir_runs_on() {
	(cd "$WORK" && PFSHIM_OUT=/proc/no/such/dir LD_PRELOAD=$LIB $T/three_sites >"$WORK/nodir.out" 2>"$WORK/nodir.err")
	local rc=$?
	[ $rc = 3 ] && grep -q '^allocated 16 blocks$' "$WORK/nodir.out" &&
		[ "$(grep -c '^pfshim: cannot use log directory' "$WORK/nodir.err")" = 1 ] || {
		echo "  rc=$rc; stderr:"
		cat "$WORK/nodir.err"
		return 1
	}
}

t_log_permissions() {
	run_both perm $T/three_sites || return 1
	[ "$(stat -c %a "$WORK/perm")" = 700 ] || { echo "  directory mode $(stat -c %a "$WORK/perm")"; return 1; }
	for f in "$WORK"/perm/*.pfslog; do
		[ "$(stat -c %a "$f")" = 600 ] || { echo "  $f mode $(stat -c %a "$f")"; return 1; }
	done
}

t_record_command() {
	(cd "$WORK" && "$CLI" record -o "$WORK/rec" -- $T/three_sites >"$WORK/rec.out" 2>"$WORK/rec.err")
	local rc=$?
	[ $rc = 3 ] && grep -q '^allocated 16 blocks$' "$WORK/rec.out" && grep -q site_alpha "$WORK/rec.err" || {
		echo "  rc=$rc; stderr:"
		head -20 "$WORK/rec.err"
		return 1
	}
}

t_python3() {
	cat >"$WORK/prog.py" <<'PY'
import json, collections, multiprocessing as mp
def sq(x):
    return x * x
if __name__ == "__main__":
    words = collections.Counter("the quick brown fox jumps over the lazy dog the end".split())
    print(json.dumps(words, sort_keys=True))
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        print(sum(pool.map(sq, range(1000))))
PY
	run_both py /usr/bin/python3 "$WORK/prog.py" || return 1
	report py || return 1
	$Q "$WORK/py.json" 'len(r["processes"]) >= 3' 'any(p["totals"]["allocations"] > 1000 for p in r["processes"])'
}

t_bash_pipeline() {
	run_both sh /bin/bash -c 'for i in $(seq 1 20); do echo $i; done | sort -n | tail -3 | tr 0-9 a-j; (exit 4)' || return 1
	report sh || return 1
	$Q "$WORK/sh.json" 'len(r["processes"]) >= 4'
}

t_sort_large() {
	seq 1 200000 | awk '{print ($1 * 7919) % 100003}' >"$WORK/nums.txt"
	run_both sort sort -n "$WORK/nums.txt" || return 1
	report sort || return 1
}

t_gcc_compile() {
	printf '#include <stdio.h>\nint main(void){puts("compiled");return 0;}\n' >"$WORK/hello.c"
	run_both gcc gcc -O2 -o /dev/null "$WORK/hello.c" || return 1
	report gcc || return 1
	$Q "$WORK/gcc.json" 'len(r["processes"]) >= 3'
}

t_git() {
	run_both git bash -c "cd $WORK && rm -rf repo && git init -q repo && cd repo && echo hi > f && git add f && git -c user.name=t -c user.email=t@e commit -qm one && git log --format=%s" || return 1
	report git || return 1
}

# Hostile programs (issue 7): each finishes as it would without the shim, and its log is readable.
t_hostile_no_descriptors_left() {
	run_both nofile $T/hostile nofile || return 1
	report nofile || return 1
}

t_hostile_malloc_fails_under_rlimit_as() {
	run_both nomem $T/hostile nomem || return 1
	grep -q 'failed' "$WORK/nomem.out" || { cat "$WORK/nomem.out"; return 1; }
	report nomem || return 1
	$Q "$WORK/nomem.json" 'site(proc(r), "hostile_site")["allocations"] == 100'
}

t_hostile_abort_and_segv_leave_readable_logs() {
	local c
	for c in abort segv; do
		run_both $c $T/hostile $c || return 1
		report $c || return 1
		$Q "$WORK/$c.json" 'site(proc(r), "hostile_site")["allocations"] == 50' 'not proc(r)["ended"]' || return 1
	done
}

t_hostile_fork_from_signal_handler() {
	run_both forksig $T/hostile forksig || return 1
	grep -q 'forked from a handler' "$WORK/forksig.out" || return 1
	report forksig || return 1
	$Q "$WORK/forksig.json" 'len(r["processes"]) == 2'
}

t_hostile_fork_tree() {
	run_both tree $T/hostile tree || return 1
	report tree || return 1
	$Q "$WORK/tree.json" 'len(r["processes"]) == 40' \
		'all(sum(s["allocations"] for s in sites(p, "hostile_site")) == 3 for p in r["processes"])'
}

t_hostile_dlopen_dlclose() {
	run_both dl $T/hostile dlopen || return 1
	report dl || return 1
	$Q "$WORK/dl.json" \
		'any(s["frames"] and (s["frames"][0]["module"] or "").startswith("libz.so") and s["frames"][0]["function"] for s in proc(r)["sites"])' \
		'site(proc(r), "hostile_site")["allocations"] == 10'
}

# The disk fills up under the log: the program runs on, one line says what was lost.
t_disk_full() {
	local d=$WORK/tiny
	mkdir -p "$d"
	mount -t tmpfs -o size=256k tmpfs "$d" 2>/dev/null || { echo "  (no tmpfs mount here: skipped)"; return 0; }
	(cd "$WORK" && PFSHIM_OUT="$d/logs" LD_PRELOAD=$LIB $T/fd_hostile 50000 >"$WORK/full.out" 2>"$WORK/full.err")
	local rc=$?
	"$CLI" report --format json "$d/logs" >"$WORK/full.json" 2>/dev/null
	"$CLI" report "$d/logs" >"$WORK/full.text" 2>/dev/null
	umount "$d"
	[ $rc = 0 ] && grep -qx 'survived 50000' "$WORK/full.out" || { echo "  rc=$rc"; cat "$WORK/full.err"; return 1; }
	grep -q '^pfshim: log .*cannot grow' "$WORK/full.err" || { echo "  no line about the lost records:"; cat "$WORK/full.err"; return 1; }
	grep -q 'the shim lost [0-9]* records' "$WORK/full.text" || { echo "  the report does not say records were lost"; return 1; }
	$Q "$WORK/full.json" 'site(proc(r), "hostile_site")["allocations"] > 0'
}

# Documentation follows the code: every variable of the shim's table is in its man page.
t_docs_name_every_variable() {
	local v missing=""
	for v in $(grep -o 'OPT("PFSHIM_[A-Z_]*"' "$ROOT/preload/config.c" | grep -o 'PFSHIM_[A-Z_]*'); do
		grep -q "^\.B $v\$" "$ROOT/docs/libpfshim.7" || missing="$missing $v"
	done
	[ -z "$missing" ] || { echo "  not in docs/libpfshim.7:$missing"; return 1; }
	if command -v man >/dev/null; then
		man -l "$ROOT/docs/libpfshim.7" 2>&1 >/dev/null | grep -q . && { echo "  man -l warns:"; man -l "$ROOT/docs/libpfshim.7" 2>&1 >/dev/null; return 1; }
	fi
	return 0
}

# Every option that pfshim --help prints is in the man page, which renders.
t_docs_man_page_has_every_option() {
	local o missing=""
	for o in $("$CLI" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
		grep -qF -- "$(echo "$o" | sed 's/-/\\-/g')" "$ROOT/docs/pfshim.1" || missing="$missing $o"
	done
	[ -z "$missing" ] || { echo "  not in docs/pfshim.1:$missing"; return 1; }
	if command -v man >/dev/null; then
		man -l "$ROOT/docs/pfshim.1" 2>&1 >/dev/null | grep -q . && { man -l "$ROOT/docs/pfshim.1" 2>&1 >/dev/null; return 1; }
	fi
	return 0
}

# Real programs from Debian (issue 7): output and exit status as without the shim.
t_perl() {
	cat >"$WORK/prog.pl" <<'PL'
my %h; $h{$_ % 1000} .= "x" for 1 .. 200000;
my $pid = fork(); if ($pid == 0) { print "child ", scalar(keys %h), "\n"; exit 3 }
waitpid($pid, 0); print "parent ", length(join "", values %h), " child exit ", $? >> 8, "\n";
my @w = sort { $b cmp $a } map { sprintf "%05d", ($_ * 7919) % 100003 } 1 .. 50000; print "$w[0] $w[-1]\n";
PL
	run_both perl /usr/bin/perl "$WORK/prog.pl" || return 1
	report perl || return 1
	$Q "$WORK/perl.json" 'len(r["processes"]) == 2'
}

t_awk() {
	seq 1 300000 | awk '{print $1 % 977, $1}' >"$WORK/awk.in"
	run_both awk gawk '{s[$1] += $2; n[$1]++} END {for (k in s) t += s[k] / n[k]; printf "%d %.3f\n", length(s), t}' "$WORK/awk.in" || return 1
	report awk || return 1
}

t_xz_threads() {
	seq 1 2000000 >"$WORK/xz.in"
	run_both xz bash -c "xz -T2 -3 -c $WORK/xz.in | tee $WORK/xz.out.xz | xz -d | sha256sum; sha256sum < $WORK/xz.out.xz" || return 1
	report xz || return 1
	$Q "$WORK/xz.json" 'any(p["totals"]["first_touch_faults"] > 100 for p in r["processes"])'
}

t_sqlite() {
	run_both sqlite sqlite3 :memory: "create table t(a integer, b text); with recursive c(x) as (select 1 union all select x + 1 from c where x < 200000) insert into t select x, hex(x * 7919 % 100003) from c; create index i on t(b); select count(*), sum(a), max(b) from t; select count(*) from t where a % 7 = 3;" || return 1
	report sqlite || return 1
}

# Redis saving in the background (fork) while a client writes: its children's copy-on-write.
t_redis_bgsave() {
	local d=$WORK/redis port=$((20000 + RANDOM % 20000))
	mkdir -p "$d"
	(cd "$d" && env ${RUN_ENV:-} PFSHIM_OUT="$d/logs" timeout 120 sh -c 'LD_PRELOAD=$0 exec "$@"' "$LIB" redis-server --port $port \
		--bind 127.0.0.1 --save "" --appendonly no --enable-debug-command yes --dir "$d" --dbfilename dump.rdb --daemonize no \
		--logfile "$d/redis.log" >"$d/out" 2>"$d/err") &
	local server=$!
	local i
	for i in $(seq 1 100); do
		[ "$(redis-cli -p $port ping 2>/dev/null)" = PONG ] && break
		sleep 0.1
	done
	redis-cli -p $port debug populate 400000 key 100 >/dev/null || { echo "  redis did not start"; cat "$d/err"; return 1; }
	redis-cli -p $port bgsave >/dev/null
	seq 1 200000 | awk '{printf "SET key:%d %s\r\n", $1 % 400000, "rewritten-while-saving"}' | redis-cli -p $port --pipe >/dev/null
	for i in $(seq 1 300); do
		redis-cli -p $port info persistence | grep -q 'rdb_bgsave_in_progress:0' && break
		sleep 0.1
	done
	local info
	info=$(redis-cli -p $port info persistence | tr -d '\r')
	local keys
	keys=$(redis-cli -p $port dbsize)
	redis-cli -p $port shutdown nosave >/dev/null 2>&1
	wait $server
	local rc=$?
	echo "$info" | grep -q 'rdb_last_bgsave_status:ok' || { echo "  bgsave failed: $info"; return 1; }
	[ "$keys" = 400000 ] || { echo "  dbsize $keys"; return 1; }
	[ $rc = 0 ] || { echo "  redis-server exited $rc"; tail -5 "$d/redis.log"; return 1; }
	"$CLI" report --format json "$d/logs" >"$d/r.json" || return 1
	$Q "$d/r.json" 'len(r["processes"]) >= 2' 'any(p["totals"]["cow_faults"] > 0 for p in r["processes"])' || return 1
	# For docs/redis.md: Redis's own figure beside pfshim's.
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("pfshim cow_faults per process:", [(p["pid"], p["totals"]["cow_faults"], p["totals"]["first_touch_faults"]) for p in r["processes"]])' "$d/r.json" >"$WORK/redis.numbers"
	echo "$info" | grep -E 'rdb_last_cow_size|rdb_last_bgsave_time' >>"$WORK/redis.numbers"
	[ -n "${PFS_KEEP_NUMBERS:-}" ] && cp "$WORK/redis.numbers" "$PFS_KEEP_NUMBERS"
	return 0
}

# More tests, one file per topic, using the helpers above.
for f in "$ROOT"/tests/integration/*.sh; do
	[ -e "$f" ] && . "$f"
done

tests=$(declare -F | awk '{print $3}' | grep '^t_')
for t in ${PFS_TESTS:-$tests}; do
	if out=$($t 2>&1); then
		pass=$((pass + 1))
		echo "ok   ${t#t_}"
	else
		fail=$((fail + 1))
		failed="$failed ${t#t_}"
		echo "FAIL ${t#t_}"
		[ -n "$out" ] && echo "$out"
	fi
done
echo "integration: $pass passed, $fail failed"
[ $((pass + fail)) -gt 0 ] || { echo "integration: no test ran"; exit 1; }
[ $fail -eq 0 ]
