# Hostile programs (issue 7): each finishes as it would without the shim, and its log is readable.

# A signal handler (async-signal-safe: it writes to a fresh page, nothing more) interrupting a loop of
# mallocs, often inside the shim: the program's output as without the shim, every allocation
# counted, and the handler's writes counted as first touches of the buffer it writes to (as many as
# the program says it made).
signal_touch_check() {
	local name=$1 n
	n=$(sed -n 's/^handler touched \([0-9]*\) pages$/\1/p' "$WORK/$name.err")
	[ -n "$n" ] || { echo "  the program did not say how many pages its handler touched:"; cat "$WORK/$name.err"; return 1; }
	report "$name" || return 1
	$Q "$WORK/$name.json" 'site(proc(r), "loop_site")["allocations"] == 400000' \
		"site(proc(r), \"handler_buffer\")[\"first_touch_faults\"] == $n"
}

t_signal_handler_touches() {
	run_both sig $T/signal_handler touch || return 1
	signal_touch_check sig
}

t_exact_signal_handler_touches() {
	RUN_ENV=PFSHIM_MODE=exact run_both xsig $T/signal_handler touch || return 1
	signal_touch_check xsig
}

# A signal handler that mallocs (not async-signal-safe: natively the program hangs or crashes now
# and then, more often on a loaded machine): the shim's own robustness.  Runs natively and in each
# mode, interleaved; each mode must not fail significantly more often than the native runs
# (Fisher's exact test, one-sided, at 0.1%: a shim that made it fail often is caught, chance is not).
t_signal_handler_allocates_robustness() {
	local runs=${PFS_SIGNAL_RUNS:-20} i m
	declare -A failed=([native]=0 [fast]=0 [exact]=0)
	# the three of a round at once: a hung run waits out its time limit beside the others
	for i in $(seq "$runs"); do
		for m in native fast exact; do
			(
				if [ $m = native ]; then
					timeout 2 $T/signal_handler alloc 20000
				else
					PFSHIM_QUIET=1 PFSHIM_MODE=$m PFSHIM_OUT="$WORK/$m.$i" \
						timeout 2 sh -c 'LD_PRELOAD=$0 exec "$@"' "$LIB" $T/signal_handler alloc 20000
				fi >/dev/null 2>&1
				echo $? >"$WORK/$m.$i.rc"
			) &
		done
		wait
		for m in native fast exact; do
			[ "$(cat "$WORK/$m.$i.rc")" = 0 ] || failed[$m]=$((failed[$m] + 1))
			rm -rf "${WORK:?}/$m.$i"
		done
	done
	echo "  found: failed (hung or crashed) of $runs runs: natively ${failed[native]}, fast ${failed[fast]}, exact ${failed[exact]}"
	$PY - "$runs" "${failed[native]}" "${failed[fast]}" "${failed[exact]}" <<'PY'
import math, sys
n, native, modes = int(sys.argv[1]), int(sys.argv[2]), [("fast", int(sys.argv[3])), ("exact", int(sys.argv[4]))]
def worse_p(a, b):
    """P(b or more of the failures fall on the shim's side | a + b failures in 2n runs, equal rates)."""
    k = a + b
    return sum(math.comb(n, j) * math.comb(n, k - j) for j in range(b, min(k, n) + 1)) / math.comb(2 * n, k)
bad = [m for m, f in modes if worse_p(native, f) < 0.001]
for m in bad:
    print("  %s mode fails significantly more often than the native runs" % m)
sys.exit(1 if bad else 0)
PY
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

# A fork inside a signal handler: the program runs as natively (no deadlock), and the child is traced
# unless the signal interrupted the shim's own work in the parent (then the shim takes none of its
# locks and leaves that child untraced: docs/design.md), which depends on where the signal lands.
t_hostile_fork_from_signal_handler() {
	run_both forksig $T/hostile forksig || return 1
	grep -q 'forked from a handler' "$WORK/forksig.out" || return 1
	report forksig || return 1
	$Q "$WORK/forksig.json" 'len(r["processes"]) in (1, 2)' \
		'len([p for p in r["processes"] if p["ppid"] not in [q["pid"] for q in r["processes"]]]) == 1' \
		'all(p["exit_status"] == 9 for p in r["processes"] if p["ppid"] in [q["pid"] for q in r["processes"]])'
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
needs_root t_disk_full
t_disk_full() {
	local d=$WORK/tiny
	mkdir -p "$d"
	mount -t tmpfs -o size=256k tmpfs "$d" 2>"$WORK/mount.err" || skip "cannot mount a small tmpfs here: $(cat "$WORK/mount.err")"
	trap 'umount "$d" 2>/dev/null' EXIT
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
