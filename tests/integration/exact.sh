# Exact mode (PFSHIM_MODE=exact): one event per fault (the kernel's fault events; userfaultfd where
# those are refused), the same exact counts as fast mode where the kernel makes them exact, and
# every program's output unchanged.

exact_run() {
	RUN_ENV="PFSHIM_MODE=exact ${RUN_ENV:-}" run_both "$@"
}

t_exact_first_touch_counts() {
	exact_run xtouch $T/touch_pages 100 37 || return 1
	report xtouch || return 1
	# N written pages of one malloc, K read-or-written of an mmap (+10 dropped by MADV_DONTNEED and
	# touched again), 25 of a block freed at once
	$Q "$WORK/xtouch.json" \
		'r["mode"] == "exact"' \
		'site(proc(r), "malloc_site")["first_touch_faults"] == 100' \
		'site(proc(r), "mmap_site")["first_touch_faults"] == 37 + 10' \
		'site(proc(r), "quick_site")["first_touch_faults"] == 25' \
		'proc(r)["totals"]["first_touch_faults"] == sum(s["first_touch_faults"] for s in proc(r)["sites"] if s["kind"] != "pfshim")'
}

# Exact mode's registration may keep transparent huge pages away (it does on the kernels measured,
# KERNEL-FACTS; a kernel may differ: the program says what it got).  A MADV_HUGEPAGE region with huge
# pages natively and none in exact mode counts its 4 KiB first touches, and the report says that exact
# mode changed its fault pattern; memory that could not have had huge pages (no advice, THP
# "madvise") draws no such warning.
t_exact_thp_changed_and_said() {
	# not run_both: the program's line says whether it got huge pages, which exact mode may change
	native_ref xthp $T/thp
	(cd "$WORK" && PFSHIM_MODE=exact PFSHIM_OUT="$WORK/xthp" LD_PRELOAD=$LIB $T/thp >"$WORK/xthp.out" 2>"$WORK/xthp.err") ||
		{ cat "$WORK/xthp.err"; return 1; }
	report xthp || return 1
	report xthp text || return 1
	local native exact
	native=$(cat "$WORK/xthp.native") exact=$(cat "$WORK/xthp.out")
	echo "  found: THP $(thp_mode); natively $native, in exact mode $exact"
	if [ "$native" = "huge pages: yes" ] && [ "$exact" = "huge pages: no" ]; then
		$Q "$WORK/xthp.json" 'site(proc(r), "huge_site")["first_touch_faults"] == 16384' || return 1
		grep -q 'could have used transparent huge pages' "$WORK/xthp.text" || { echo "  no THP warning"; return 1; }
	fi
	exact_run xtouch $T/touch_pages 100 37 || return 1
	report xtouch text || return 1
	if [ "$(thp_mode)" = madvise ]; then
		! grep -q 'transparent huge pages' "$WORK/xtouch.text" || { echo "  a THP warning for memory without advice"; return 1; }
	fi
}

t_exact_cow_after_fork() {
	exact_run xcow $T/touch_cow || return 1
	report xcow || return 1
	check_touch_cow "$WORK/xcow.json"
}

t_exact_heap_pages_at_carving_site() {
	exact_run xheap $T/heap_small || return 1
	report xheap || return 1
	# 20,000 blocks of 64 B on 391-392 fresh heap pages (the page where the heap's carving begins,
	# above what malloc had used before the shim started, may hold the top chunk's header already
	# when the heap is registered); a thread arena's 1000 blocks on 51-53 pages
	$Q "$WORK/xheap.json" \
		'389 <= site(proc(r), "small_site")["first_touch_faults"] <= 392' \
		'site(proc(r), "small_site")["allocations"] == 20000' \
		'site(proc(r), "reuse_site")["first_touch_faults"] == 0' \
		'51 <= site(proc(r), "thread_heap_site")["first_touch_faults"] <= 53'
}

t_exact_heap_cow() {
	exact_run xheapcow $T/heap_cow || return 1
	report xheapcow || return 1
	$Q "$WORK/xheapcow.json" \
		"136 <= site($PARENT, \"table_site\")[\"first_touch_faults\"] <= 139" \
		"137 <= site($CHILD, \"table_site\")[\"cow_faults\"] <= 138"
}

# A forked child that writes all it shares and never calls into the shim (nothing drains its fault
# events before its end): each of its 16,384 writes a copy, none lost, nothing said on stderr.
t_exact_cow_child_that_never_calls_the_shim() {
	exact_run xquiet $T/cow_quiet_child 64 || return 1
	report xquiet || return 1
	! grep -q '^pfshim: .*lost' "$WORK/xquiet.err" || { grep '^pfshim:' "$WORK/xquiet.err"; return 1; }
	$Q "$WORK/xquiet.json" \
		"site($PARENT, \"quiet_site\")[\"first_touch_faults\"] == 16384" \
		"site($CHILD, \"quiet_site\")[\"cow_faults\"] == 16384"
}

t_exact_fork_each_process_counts_its_own() {
	exact_run xfork $T/touch_fork || return 1
	report xfork || return 1
	$Q "$WORK/xfork.json" \
		'len(r["processes"]) == 2' \
		"site($PARENT, \"shared_site\")[\"first_touch_faults\"] == 17" \
		"site($CHILD, \"shared_site\")[\"first_touch_faults\"] == 20" || return 1
	$PY "$ROOT/tests/lib/inherited_seq.py" "$WORK/xfork" $((4 << 20))
}

t_exact_threads_fault_at_once() {
	exact_run xthr $T/touch_threads || return 1
	report xthr || return 1
	$Q "$WORK/xthr.json" 'site(proc(r), "worker_site")["first_touch_faults"] == 400' || return 1
	exact_run xthreads $T/threads || return 1
	report xthreads || return 1
	$Q "$WORK/xthreads.json" 'site(proc(r), "thread_site")["allocations"] == 160000'
}

t_exact_spawn_exec_vfork() {
	exact_run xspawn $T/spawner || return 1
	report xspawn || return 1
	$Q "$WORK/xspawn.json" 'len(r["processes"]) >= 3' 'r["mode"] == "exact"' || return 1
	exact_run xexec $T/exec_chain 3 || return 1
	report xexec || return 1
	$Q "$WORK/xexec.json" 'len(r["processes"]) == 4' \
		'all(site(p, "chain_site")["allocations"] == 9 for p in r["processes"])' || return 1
	exact_run xforkth $T/fork_threads || return 1
}

# Exact mode needs a full userfaultfd: as nobody (vm.unprivileged_userfaultfd=0, no access to
# /dev/userfaultfd) the program runs on in fast mode, and one line says why.
needs_root t_exact_unprivileged_falls_back
t_exact_unprivileged_falls_back() {
	local d=$WORK/xnobody
	mkdir -p "$d" && chmod 777 "$d" && chmod 755 "$WORK"
	install -m 0755 "$LIB" $T/touch_pages "$d/"
	(cd "$d" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env PFSHIM_MODE=uffd PFSHIM_OUT="$d/logs" LD_PRELOAD="$d/libpfshim.so" ./touch_pages 100 37 \
		>"$d/out" 2>"$d/err") || { cat "$d/err"; return 1; }
	grep -qx 'touched 100 + 37 + 10 + 25 pages' "$d/out" || { cat "$d/out"; return 1; }
	[ "$(grep -c 'PFSHIM_MODE=uffd' "$d/err")" = 1 ] || { echo "  expected one line:"; cat "$d/err"; return 1; }
	grep -q 'CAP_SYS_PTRACE.*running in fast mode' "$d/err" || { cat "$d/err"; return 1; }
	"$CLI" report --format json "$d/logs" >"$d/r.json" || return 1
	$Q "$d/r.json" 'r["mode"] == "fast"' 'site(proc(r), "malloc_site")["first_touch_faults"] == 100'
}

# Policies work in exact mode too: populate happens before registration, so the storm site's pages
# are prefaulted, not first touches; the quiet site still faults every page it touches.
t_exact_policy_populate() {
	exact_run xpnone $T/policy_storm || return 1
	report xpnone || return 1
	$Q "$WORK/xpnone.json" 'r["mode"] == "exact"' \
		'site(proc(r), "storm_site")["first_touch_faults"] == 4095' \
		'site(proc(r), "quiet_site")["first_touch_faults"] == 100' || return 1
	(export PFSHIM_POLICY='populate if site=storm_site' && exact_run xpstorm $T/policy_storm) || return 1
	report xpstorm || return 1
	$Q "$WORK/xpstorm.json" 'r["mode"] == "exact"' \
		'site(proc(r), "storm_site")["first_touch_faults"] == 0' \
		'site(proc(r), "storm_site")["prefaulted_pages"] == 4095' \
		'site(proc(r), "quiet_site")["first_touch_faults"] == 100' \
		'site(proc(r), "quiet_site")["prefaulted_pages"] == 0'
}

# PFSHIM_TOUCH_SITE=1: where each site's pages were touched, in user code or by the kernel inside
# a system call (read(2) from /dev/zero into a fresh buffer).
t_exact_touch_sites() {
	RUN_ENV="PFSHIM_TOUCH_SITE=1 PFSHIM_MODE=uffd" exact_run xts $T/touch_site || return 1
	report xts || return 1
	$Q "$WORK/xts.json" \
		'site(proc(r), "user_buffer")["first_touch_faults"] == 32' \
		'site(proc(r), "user_buffer")["touch_sites"][0]["frame"]["function"] == "touch_loop"' \
		'site(proc(r), "user_buffer")["touch_sites"][0]["syscall"] is None' \
		'site(proc(r), "user_buffer")["touch_sites"][0]["faults"] == 32' \
		'site(proc(r), "read_buffer")["first_touch_faults"] == 32' \
		'site(proc(r), "read_buffer")["touch_sites"][0]["syscall"] == "read"' \
		'site(proc(r), "read_buffer")["touch_sites"][0]["faults"] == 32' || return 1
	report xts text || return 1
	grep -q 'touched (32 faults) by the kernel in read(2)' "$WORK/xts.text" || { echo "  text lacks the touch site"; return 1; }
	# without the variable no touch site is logged
	RUN_ENV=PFSHIM_MODE=uffd exact_run xnots $T/touch_site || return 1
	report xnots || return 1
	$Q "$WORK/xnots.json" '"touch_sites" not in site(proc(r), "read_buffer")'
}

# mremap: the kernel drops the registration of a moved mapping; the shim registers the new range, so
# its new pages and its dropped-and-touched-again pages count.  A file mapping cannot be registered:
# the report names the memory it could not observe.
t_exact_mremap_and_file_mapping() {
	RUN_ENV=PFSHIM_MODE=uffd exact_run xremap $T/remap_grow || return 1
	report xremap || return 1
	$Q "$WORK/xremap.json" 'site(proc(r), "grow_site")["first_touch_faults"] == 4 + 12 + 2' || return 1
	report xremap text || return 1
	grep -q 'could not be registered with userfaultfd' "$WORK/xremap.text" || { echo "  no unobservable warning"; return 1; }
}

# The handler is a process of its own (the program gains no thread): programs that fork from signal
# handlers, make process trees, or close every descriptor behave as without the shim; closing or
# running out of them ends exact mode with one line, never the program.
t_exact_hostile_programs() {
	RUN_ENV=PFSHIM_MODE=uffd exact_run xforksig $T/hostile forksig || return 1
	RUN_ENV=PFSHIM_MODE=uffd exact_run xtree $T/hostile tree || return 1
	RUN_ENV=PFSHIM_MODE=uffd exact_run xfds $T/fd_hostile 50000 || return 1
	RUN_ENV=PFSHIM_MODE=uffd exact_run xnofile $T/hostile nofile || return 1
	local c
	for c in abort segv; do
		RUN_ENV=PFSHIM_MODE=uffd exact_run x$c $T/hostile $c || return 1
		report x$c || return 1
		$Q "$WORK/x$c.json" 'site(proc(r), "hostile_site")["allocations"] == 50' || return 1
	done
	# no handler outlives its program: no process left with this test's logs (the handler is a
	# process forked from the program, with its environment)
	sleep 0.2
	local left
	left=$(grep -l "PFSHIM_OUT=$WORK/" /proc/[0-9]*/environ 2>/dev/null)
	[ -z "$left" ] || { echo "  a handler outlived its program: $left"; return 1; }
}


# A careless pkill kills exact mode's handler processes while the program runs: the program runs on
# and exits as it would without the shim (docs/design.md: the kernel releases the registrations and
# faulting threads go on).  The handlers are the processes with the program's environment, but for
# the program itself.
t_exact_handler_killed_program_runs_on() {
	(cd "$WORK" && PFSHIM_MODE=uffd PFSHIM_OUT="$WORK/logs" LD_PRELOAD=$LIB exec /usr/bin/sleep 1.5 2>"$WORK/err") &
	local prog=$! p i killed=0 rc
	for i in $(seq 100); do
		for p in $(grep -l "PFSHIM_OUT=$WORK/logs" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do
			[ "$p" = "$prog" ] || { kill -KILL "$p" 2>/dev/null && killed=$((killed + 1)); }
		done
		[ $killed -gt 0 ] && break
		sleep 0.01
	done
	wait $prog
	rc=$?
	echo "  found: $killed handler processes, killed while the program ran"
	[ $killed -gt 0 ] || { echo "  no handler process found"; return 1; }
	[ $rc = 0 ] || { echo "  the program exited $rc (natively 0) once its handlers were killed:"; cat "$WORK/err"; return 1; }
}
