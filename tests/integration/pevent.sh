# Exact mode on the kernel's own fault events (PFSHIM_MODE=exact where perf_event_open allows it):
# every fault observed as it completes, nothing trapped; unprivileged where
# kernel.perf_event_paranoid is 2 or less; userfaultfd where fault events are refused.

MECH='proc(r)["mechanism"]'

# pevent_nobody NAME PROG ARGS...: PROG in exact mode as an unprivileged user, its JSON report in
# $WORK/xnobody/NAME.json.
pevent_nobody() {
	local name=$1
	shift
	PFSHIM_MODE=exact run_as_nobody "$WORK/xnobody" "$name" "$@" || return 1
	"$CLI" report --format json "$WORK/xnobody/$name" >"$WORK/xnobody/$name.json" || return 1
}

# The storm, the fork and the threaded case as an ordinary user: fault events, the same per-site
# first-touch and copy-on-write counts the exact tests expect of every exact mechanism, each
# fault's own time (the advisor's evidence says so), and the instructions that touched.
needs_root t_pevent_unprivileged_counts
t_pevent_unprivileged_counts() {
	local d=$WORK/xnobody
	pevent_nobody touch $T/touch_pages 100 37 || return 1
	grep -qx 'touched 100 + 37 + 10 + 25 pages' "$d/touch.out" || { cat "$d/touch.out"; return 1; }
	[ ! -s "$d/touch.err" ] || grep -v '^pfshim: mode exact' "$d/touch.err" | grep -q . && { cat "$d/touch.err"; return 1; }
	$Q "$d/touch.json" 'r["mode"] == "exact"' "$MECH == \"fault-events\"" \
		'site(proc(r), "malloc_site")["first_touch_faults"] == 100' \
		'site(proc(r), "mmap_site")["first_touch_faults"] == 37 + 10' \
		'site(proc(r), "quick_site")["first_touch_faults"] == 25' || return 1
	pevent_nobody cow $T/touch_cow || return 1
	check_touch_cow "$d/cow.json" 'all(p["mechanism"] == "fault-events" for p in r["processes"])' || return 1
	pevent_nobody thr $T/touch_threads || return 1
	$Q "$d/thr.json" "$MECH == \"fault-events\"" 'site(proc(r), "worker_site")["first_touch_faults"] == 400' || return 1
	PFSHIM_TOUCH_SITE=1 pevent_nobody ts $T/touch_site || return 1
	$Q "$d/ts.json" "$MECH == \"fault-events\"" \
		'site(proc(r), "user_buffer")["first_touch_faults"] == 32' \
		'site(proc(r), "user_buffer")["touch_sites"][0]["frame"]["function"] == "touch_loop"' \
		'site(proc(r), "user_buffer")["touch_sites"][0]["syscall"] is None' \
		'site(proc(r), "user_buffer")["touch_sites"][0]["faults"] == 32' \
		'site(proc(r), "read_buffer")["first_touch_faults"] == 32' || return 1
	# the faults' own times: the advisor's evidence for a burst after malloc
	PFSHIM_MODE=exact run_as_nobody "$d" burst $T/adv_burst || return 1
	"$CLI" advise --format json "$d/burst" >"$d/burst.adv.json" || return 1
	grep -q '"exact_times": true' "$d/burst.adv.json" || { echo "  no per-fault times in the advisor's evidence"; return 1; }
}

# A read of a page never touched, then a write to it: the kernel may map the zero page on the read
# and take a second fault on the write (probed: the program counts its own faults), or one fresh
# page.  Either way the page is one first touch, and the kernel's count is as native.
t_pevent_read_then_write_one_first_touch() {
	RUN_ENV="PFSHIM_MODE=exact" run_both xprw $T/read_then_write 2000 || return 1
	echo "  found: natively $(cat "$WORK/xprw.out" 2>/dev/null | tr '\n' ' ')"
	report xprw || return 1
	$Q "$WORK/xprw.json" "$MECH == \"fault-events\"" \
		'site(proc(r), "read_write_site")["first_touch_faults"] == 2000' \
		'site(proc(r), "read_write_site")["cow_faults"] == 0'
}

# Nothing is registered: a MADV_HUGEPAGE region still gets transparent huge pages
# (AnonHugePages in the program's smaps), and its faults are the kernel's few huge ones.
t_pevent_thp_kept() {
	[ "$(thp_mode)" = never ] || [ "$(thp_mode)" = none ] && skip "transparent huge pages are off here ($(thp_mode))"
	(cd "$WORK" && $T/thp >"$WORK/pthp.native" 2>/dev/null) || return 1
	(cd "$WORK" && PFSHIM_MODE=exact PFSHIM_OUT="$WORK/pthp" LD_PRELOAD=$LIB $T/thp >"$WORK/pthp.out" 2>"$WORK/pthp.err") ||
		{ cat "$WORK/pthp.err"; return 1; }
	echo "  found: THP $(thp_mode); natively $(cat "$WORK/pthp.native"), in exact mode $(cat "$WORK/pthp.out")"
	grep -qx 'huge pages: yes' "$WORK/pthp.native" || skip "the kernel gave no huge pages natively"
	grep -qx 'huge pages: yes' "$WORK/pthp.out" || { echo "  exact mode took the huge pages away"; return 1; }
	report pthp || return 1
	$Q "$WORK/pthp.json" "$MECH == \"fault-events\""
}

# Where perf_event_open is refused (here a seccomp filter, as a container or a kernel's
# perf_event_paranoid may refuse it), exact mode traps faults with userfaultfd: one line says so.
# PFSHIM_MODE=uffd asks for the trap: no line.
t_pevent_refused_falls_back_to_userfaultfd() {
	(cd "$WORK" && PFSHIM_MODE=exact PFSHIM_OUT="$WORK/pfb" $T/refuse perf_event_open env LD_PRELOAD=$LIB \
		$T/touch_pages 100 37 >"$WORK/pfb.out" 2>"$WORK/pfb.err") || { cat "$WORK/pfb.err"; return 1; }
	grep -qx 'touched 100 + 37 + 10 + 25 pages' "$WORK/pfb.out" || { cat "$WORK/pfb.out"; return 1; }
	[ "$(grep -vc '^pfshim: mode ' "$WORK/pfb.err")" = 1 ] || { echo "  expected one line:"; cat "$WORK/pfb.err"; return 1; }
	grep -q '^pfshim: PFSHIM_MODE=exact: no fault events here: .*trapping faults with userfaultfd instead' "$WORK/pfb.err" ||
		{ cat "$WORK/pfb.err"; return 1; }
	report pfb || return 1
	$Q "$WORK/pfb.json" "$MECH == \"userfaultfd\"" 'site(proc(r), "malloc_site")["first_touch_faults"] == 100' || return 1
	RUN_ENV="PFSHIM_MODE=uffd" run_both puffd $T/touch_pages 100 37 || return 1
	grep -v '^pfshim: mode ' "$WORK/puffd.err" | grep . && return 1
	report puffd || return 1
	$Q "$WORK/puffd.json" "$MECH == \"userfaultfd\""
}

# kernel.perf_event_paranoid 3: Debian's kernels refuse perf_event_open to users without
# CAP_PERFMON then; a kernel without that patch treats 3 as 2 (probed: then skipped).  Restored after.
needs_root t_pevent_paranoid3_falls_back
t_pevent_paranoid3_falls_back() {
	local f=/proc/sys/kernel/perf_event_paranoid old d=$WORK/xp3
	old=$(cat $f) || skip "no $f"
	trap 'echo "$old" >'"$f" EXIT # each test is a bash of its own; skip exits
	echo 3 >$f || skip "cannot write $f"
	PFSHIM_MODE=exact run_as_nobody "$d" p3 $T/touch_pages 100 37 || return 1
	"$CLI" report --format json "$d/p3" >"$d/p3.json" || return 1
	if $Q "$d/p3.json" "$MECH == \"fault-events\"" >/dev/null 2>&1; then
		skip "this kernel lets an unprivileged user open fault events at perf_event_paranoid 3"
	fi
	[ "$(grep -c '^pfshim: PFSHIM_MODE=exact: no fault events here' "$d/p3.err")" = 1 ] || { cat "$d/p3.err"; return 1; }
	$Q "$d/p3.json" 'site(proc(r), "malloc_site")["first_touch_faults"] == 100'
}

# Shared memory on fault events: every page the parent touches in the shared mapping and the System
# V segment is seen (nothing to register), and no worker's write to shared memory is a copy.
t_pevent_shared_memory() {
	RUN_ENV=PFSHIM_MODE=exact run_both psharedw $T/shared_workers || return 1
	report psharedw || return 1
	local parent
	read -r _ parent _ _ < <(grep '^parent ' "$WORK/psharedw.err")
	[ -n "$parent" ] || { echo "  the program's counts are missing"; return 1; }
	$Q "$WORK/psharedw.json" 'all(p["mechanism"] == "fault-events" for p in r["processes"])' 'len(r["processes"]) == 5' \
		"abs(site([p for p in r['processes'] if p['pid'] == p['root_pid']][0], 'shared_site')['first_touch_faults'] - $parent) <= 0.05 * $parent" \
		'all(s["cow_faults"] == 0 for p in r["processes"] for s in p["sites"] if s["kind"] == "shared")'
}

# exact_with_count NAME PROG WHAT: PROG in exact mode, its JSON report, and in COUNT the faults its
# stderr gives on a line "WHAT: N faults" (the program's own getrusage of a step)
exact_with_count() {
	local name=$1 prog=$2 what=$3
	RUN_ENV=PFSHIM_MODE=exact run_both "$name" "$prog" || return 1
	report "$name" || return 1
	COUNT=$(sed -n "s/^$what: \([0-9]*\) faults\$/\1/p" "$WORK/$name.err")
	[ -n "$COUNT" ] || { cat "$WORK/$name.err"; return 1; }
	echo "  found: the kernel counted $COUNT faults ($what)"
}

# Reads of shared memory a child wrote (tests/preload/shared_read_around.c): each maps the page
# cache's pages around it (fault-around) with one fault; the parent's faults there are its 8,192
# writes and the kernel's count of its reads, not one per page mapped.
t_pevent_shared_reads_fault_around() {
	exact_with_count xaround $T/shared_read_around reads || return 1
	$Q "$WORK/xaround.json" 'all(p["mechanism"] == "fault-events" for p in r["processes"])' \
		"site($PARENT, \"read_around_site\")[\"first_touch_faults\"] == 8192 + $COUNT" \
		"site($PARENT, \"read_around_site\")[\"first_touch_pages\"] >= 8192 + $COUNT" \
		"site($CHILD, \"read_around_site\")[\"first_touch_faults\"] == 8192"
}

# Threads that fault on one page at the same moment each take a fault (tests/preload/threads_meet.c:
# two threads write the same 8,192 pages in step): exact mode counts them all, as the kernel does
# (the program's own getrusage, less the few faults elsewhere in that window and the rare one whose
# partner it did not find), on 8,192 pages; fast mode, which sees pages, counts one a page.
t_pevent_threads_meet_at_a_page() {
	exact_with_count xmeet $T/threads_meet writes || return 1
	$Q "$WORK/xmeet.json" "$MECH == \"fault-events\"" \
		"0.98 * $COUNT - 64 <= site(proc(r), \"meet_site\")[\"first_touch_faults\"] <= $COUNT" \
		'site(proc(r), "meet_site")["first_touch_pages"] == 8192' || return 1
	RUN_ENV=PFSHIM_MODE=fast run_both fmeet $T/threads_meet || return 1
	report fmeet || return 1
	$Q "$WORK/fmeet.json" 'site(proc(r), "meet_site")["first_touch_faults"] == 8192' \
		'site(proc(r), "meet_site")["first_touch_pages"] == 8192'
}
