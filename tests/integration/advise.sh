# The advisor (issue 10): per-site evidence in the reports, `pfshim advise DIR` on programs built
# for each rule (tests/preload/adv_*.c), and `advise --verify` measuring a policy for real.

# The advice for the site whose function is $1, from an `advise --format json` document.
ADV='(lambda f: [a for a in r["advice"] if a["function"] == f][0])'

# The actions advised for a dense burst into memory that lives most of the program: with huge pages
# where the advice does something (THP "madvise"; under "always" the kernel gives them already,
# under "never" the advice does nothing).
burst_actions() {
	if grep -q '\[madvise\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null; then
		echo 'hugepage,populate'
	else
		echo 'populate'
	fi
}

# advise NAME: `pfshim advise` of $WORK/NAME as JSON ($WORK/NAME.adv.json) and text ($WORK/NAME.adv)
advise() {
	"$CLI" advise --format json "$WORK/$1" >"$WORK/$1.adv.json" 2>"$WORK/$1.adv.err" &&
		"$CLI" advise "$WORK/$1" >"$WORK/$1.adv" 2>>"$WORK/$1.adv.err" ||
		{ echo "  pfshim advise failed:"; head -5 "$WORK/$1.adv.err"; return 1; }
}

# A heap reserved without access and committed by mprotect (tests/preload/adv_reserved.c, as V8
# makes its heap): a dense burst, advised populate; the rule's populate waits for the mprotects that
# open the memory (at mmap there is nothing to populate) and removes the faults; a reservation
# unmapped unopened waits no more (the memory mapped next at its place is another site's).
t_advise_reserved_heap_populated_as_opened() {
	run_both advres $T/adv_reserved || return 1
	advise advres || return 1
	$Q "$WORK/advres.adv.json" \
		"$ADV(\"reserve_site\")[\"rule\"].endswith(\"populate if site=reserve_site\")" \
		"$ADV(\"reserve_site\")[\"first_touch_faults\"] == 4096" \
		"$ADV(\"reserve_site\")[\"evidence\"][\"reserved_allocations\"] == 1" || return 1
	grep -q 'as the program opens its memory (mapped without access, PROT_NONE' "$WORK/advres.adv" ||
		{ grep -A5 reserve_site "$WORK/advres.adv"; return 1; }
	(cd "$WORK" && PFSHIM_POLICY='populate if site=reserve_site; populate if site=dropped_site' \
		PFSHIM_OUT="$WORK/advrespol" LD_PRELOAD=$LIB \
		$T/adv_reserved >"$WORK/advrespol.out" 2>"$WORK/advrespol.err") || { cat "$WORK/advrespol.err"; return 1; }
	cmp -s "$WORK/advres.out" "$WORK/advrespol.out" || { echo "  output differs under the policy"; return 1; }
	! grep -q '^pfshim: policy:' "$WORK/advrespol.err" || { cat "$WORK/advrespol.err"; return 1; }
	report advrespol || return 1
	# opened in two halves: two applications; dropped_site's reservation, unmapped, waits no more
	$Q "$WORK/advrespol.json" 'site(proc(r), "reserve_site")["first_touch_faults"] == 0' \
		'site(proc(r), "reserve_site")["prefaulted_pages"] == 4096' \
		'site(proc(r), "reserve_site")["policy_applications"] == 2' \
		'site(proc(r), "fresh_site")["first_touch_faults"] == 1024' \
		'site(proc(r), "fresh_site")["prefaulted_pages"] == 0' || return 1
	# mlock waits the same way, and its pages are no first touches either
	(cd "$WORK" && PFSHIM_POLICY='mlock if site=reserve_site' PFSHIM_OUT="$WORK/advreslock" LD_PRELOAD=$LIB \
		$T/adv_reserved >/dev/null 2>"$WORK/advreslock.err") || { cat "$WORK/advreslock.err"; return 1; }
	report advreslock || return 1
	$Q "$WORK/advreslock.json" 'site(proc(r), "reserve_site")["first_touch_faults"] == 0' \
		'site(proc(r), "reserve_site")["prefaulted_pages"] == 4096'
}

t_advise_dense_burst_populate_that_site_only() {
	run_both advburst $T/adv_burst || return 1
	report advburst || return 1
	# the evidence in the report: 32 MiB asked, 32 MiB touched (the first page may hold malloc's
	# header, present before the program touched it), in a burst, freed before the end
	$Q "$WORK/advburst.json" \
		'site(proc(r), "burst_site")["evidence"]["requested_bytes"] == 32 << 20' \
		'site(proc(r), "burst_site")["evidence"]["touched_bytes"] >= (32 << 20) - 4096' \
		'site(proc(r), "burst_site")["evidence"]["touched_share"] > 0.99' \
		'site(proc(r), "burst_site")["evidence"]["freed_allocations"] == 1' \
		'site(proc(r), "burst_site")["evidence"]["touch_rate"] > site(proc(r), "slow_site")["evidence"]["touch_rate"]' \
		'site(proc(r), "slow_site")["evidence"]["touch_rate"] < 10000' \
		'site(proc(r), "slow_site")["evidence"]["touch_spread_ns"]["max"] > 200e6' || return 1
	report advburst text || return 1
	grep -q '= allocated 32.0 MiB, touched 32.0 MiB (100%' "$WORK/advburst.text" ||
		{ echo "  no evidence line in the text report"; return 1; }
	advise advburst || return 1
	# 32 MiB living from its allocation to the program's end: long-lived (half its life or more)
	local rule
	rule="$(burst_actions) if site=burst_site"
	$Q "$WORK/advburst.adv.json" \
		"$ADV(\"burst_site\")[\"advice\"] == \"populate\"" \
		"$ADV(\"burst_site\")[\"rule\"] == \"$rule\"" \
		"$ADV(\"slow_site\")[\"advice\"] == \"fine\"" \
		"$ADV(\"slow_site\")[\"rule\"] is None" \
		"r[\"policy\"] == \"$rule\"" || return 1
	grep -qx "PFSHIM_POLICY='$rule'" "$WORK/advburst.adv" ||
		{ echo "  no policy line:"; tail -3 "$WORK/advburst.adv"; return 1; }
}

t_advise_storm_example_populate() {
	run_both advstorm $BUILD/examples/storm || return 1
	advise advstorm || return 1
	$Q "$WORK/advstorm.adv.json" \
		"$ADV(\"storm_site\")[\"advice\"] == \"populate\"" \
		"r[\"policy\"] == \"$(burst_actions) if site=storm_site\""
}

# slow_cgroup DIR: makes cgroup DIR (under cgroup v2 with its cpu controller, or v1's cpu
# hierarchy) whose processes get 5% of a CPU, 5 ms in every 100 ms: a machine loaded twenty times
# over, made on purpose.  Prints its path; or why not, and fails.
slow_cgroup() {
	local d
	if grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
		grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
		d=/sys/fs/cgroup/$1
		mkdir -p "$d" && echo "5000 100000" >"$d/cpu.max" ||
			{ echo "cgroup v2: cannot limit the CPU of $d"; return 1; }
	elif [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
		d=/sys/fs/cgroup/cpu/$1
		mkdir -p "$d" && echo 100000 >"$d/cpu.cfs_period_us" && echo 5000 >"$d/cpu.cfs_quota_us" ||
			{ echo "cgroup v1: cannot limit the CPU of $d"; return 1; }
	else
		echo "no cgroup CPU limit here (neither cgroup v2's cpu controller nor v1's cpu hierarchy)"
		return 1
	fi
	echo "$d"
}

# On a loaded machine a program takes its faults at a fraction of its speed in wall time: the
# advisor judges the burst against the time the program did not wait for a CPU (its main thread's
# wait, from the kernel's schedstat at its end), so the advice is the one of a quiet machine.
# Fast mode finds the 32 MiB burst in one scan; at 5% of a CPU it took seconds, a trickle's speed.
needs_root t_advise_burst_on_a_loaded_machine
t_advise_burst_on_a_loaded_machine() {
	local cg waited
	cg=$(slow_cgroup "pfs-slow-$$") || skip "$cg"
	# the kernel makes a program in it wait (measured: a shell's own busy loop), or it proves nothing
	waited=$(sh -c 'echo $$ >"$1/cgroup.procs"; i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done
		read -r run wait _ </proc/$$/schedstat; echo $((100 * wait / (run + wait + 1)))' sh "$cg")
	if [ "${waited:-0}" -lt 50 ]; then
		rmdir "$cg"
		skip "the cgroup's limit made a busy loop wait only ${waited:-?}% of its time"
	fi
	(echo $BASHPID >"$cg/cgroup.procs" && run_both advslow $T/adv_burst) || { rmdir "$cg"; return 1; }
	rmdir "$cg"
	report advslow && advise advslow || return 1
	$Q "$WORK/advslow.json" \
		'proc(r)["storm_detection"]["unwaited_share"] < 0.5' || return 1
	$Q "$WORK/advslow.adv.json" \
		"$ADV(\"burst_site\")[\"advice\"] == \"populate\"" \
		"$ADV(\"slow_site\")[\"advice\"] == \"fine\"" || { cat "$WORK/advslow.adv"; return 1; }
	report advslow text || return 1
	grep -q '^#   (a loaded machine: its main thread waited for a CPU [0-9]*% of its life' "$WORK/advslow.text" ||
		{ echo "  the report does not say the machine was loaded:"; grep '^#   ' "$WORK/advslow.text" | head; return 1; }
}

t_advise_sparse_names_the_waste() {
	run_both advsparse $T/adv_sparse || return 1
	advise advsparse || return 1
	# 64 MiB asked, one page of each MiB touched: populating would waste 64 MiB - 64 pages (63
	# when the first page, holding malloc's header, was present before the program touched it)
	$Q "$WORK/advsparse.adv.json" \
		"$ADV(\"sparse_site\")[\"advice\"] == \"sparse\"" \
		"$ADV(\"sparse_site\")[\"waste_if_populated_bytes\"] in ((64 << 20) - 64 * 4096, (64 << 20) - 63 * 4096)" \
		"\"populate\" not in r[\"policy\"]" || return 1
	grep -q 'do not populate it: that would make 63.8 MiB resident that nothing touches' \
		"$WORK/advsparse.adv" || { echo "  the waste is not named:"; cat "$WORK/advsparse.adv"; return 1; }
}

t_advise_file_read_in_order() {
	run_both advfile $T/adv_file "$WORK/advfile.data" || return 1
	advise advfile || return 1
	# fast mode sees a file mapping's pages as they are mapped in (fault-around maps 16 at a time)
	$Q "$WORK/advfile.adv.json" \
		"$ADV(\"file_site\")[\"kind\"] == \"mmap-file\"" \
		"$ADV(\"file_site\")[\"evidence\"][\"touched_share\"] > 0.99" \
		"$ADV(\"file_site\")[\"advice\"] == \"file-readahead\"" \
		"$ADV(\"file_site\")[\"rule\"] == \"willneed if site=file_site,kind=mmap-file\""
}

t_advise_cow_after_fork() {
	run_both advcow $T/adv_cow || return 1
	advise advcow || return 1
	# the child rewrites 16 MiB it inherited: 4096 copies in one fork, a code change to advise
	$Q "$WORK/advcow.adv.json" \
		"$ADV(\"cow_site\")[\"advice\"] == \"fork\"" \
		"$ADV(\"cow_site\")[\"rule\"] is None" \
		"$ADV(\"cow_site\")[\"evidence\"][\"cow_pages\"] == 4096" \
		"$ADV(\"cow_site\")[\"evidence\"][\"cow_per_fork\"] == 4096" \
		"\"in the child after fork\" in $ADV(\"cow_site\")[\"expected\"]" \
		'r["policy"] == ""' || return 1
	report advcow || return 1
	$Q "$WORK/advcow.json" 'any(s["evidence"]["cow_per_fork"] == 4096 for p in r["processes"] for s in p["sites"])'
}

# The measurement of a rule, given (-p): whether the advice is populate depends on how fast a loaded
# machine touched the storm (t_advise_storm_example_populate); the advice itself is what --verify
# measures in t_advise_verify_says_when_it_did_not_help and t_advise_verify_nothing_to_verify.
t_advise_verify_storm() {
	(cd "$WORK" && "$CLI" advise --verify --format json -n 2 -p 'populate if site=storm_site' -- $BUILD/examples/storm \
		>"$WORK/verify.json" 2>"$WORK/verify.err") || { echo "  advise --verify failed:"; cat "$WORK/verify.err"; return 1; }
	# the storm's 16383 first touches become prefaulted pages; the output is the same
	S='[s for s in r["sites"] if s["function"] == "storm_site"][0]'
	$Q "$WORK/verify.json" \
		"r[\"policy\"] == \"populate if site=storm_site\"" \
		"$S[\"without\"][\"first_touch_faults\"] >= 16383" \
		"$S[\"with\"][\"first_touch_faults\"] <= 16" \
		"$S[\"with\"][\"prefaulted_pages\"] >= 16383" \
		"$S[\"helped\"] is True" \
		'r["total"]["with"]["first_touch_faults"] < r["total"]["without"]["first_touch_faults"] / 10' \
		'r["output_unchanged"] is True' \
		'r["status_unchanged"] is True' \
		'r["exit_status"] == 0'
}

t_advise_verify_says_when_it_did_not_help() {
	# willneed on a file just written (all in the page cache): the faults that map it stay
	(cd "$WORK" && "$CLI" advise --verify -n 1 -- $T/adv_file "$WORK/advnohelp.data" \
		>"$WORK/nohelp.txt" 2>"$WORK/nohelp.err") || { cat "$WORK/nohelp.err"; return 1; }
	grep -q '=> did not help: first-touch faults \([0-9][0-9]*\) -> \1,' "$WORK/nohelp.txt" ||
		{ echo "  no 'did not help':"; cat "$WORK/nohelp.txt"; return 1; }
	grep -q '^output: unchanged in all 2 runs' "$WORK/nohelp.txt"
}

t_advise_usage() {
	"$CLI" advise >/dev/null 2>&1; [ $? = 2 ] || { echo "  no operand: not 2"; return 1; }
	"$CLI" advise --runs 3 "$WORK" >/dev/null 2>&1; [ $? = 2 ] || { echo "  --runs without --verify"; return 1; }
	"$CLI" advise --format xml "$WORK" >/dev/null 2>&1; [ $? = 2 ] || { echo "  bad format"; return 1; }
	"$CLI" advise "$WORK/no-such-dir" >/dev/null 2>&1; [ $? = 1 ] || { echo "  missing dir: not 1"; return 1; }
	return 0
}

t_advise_large_long_lived_hugepage() {
	run_both advhuge $T/adv_huge || return 1
	advise advhuge || return 1
	# hugepage where the advice does something: THP "madvise" (under "always" the kernel uses huge
	# pages already, under "never" the advice does nothing). Not populate: this single-threaded
	# program scans only at its allocator calls, so fast mode finds the 4096 pages at the munmap,
	# 1.2 s later, and cannot tell a burst; the advice says so.
	local want=None
	[ "$(thp_mode)" = madvise ] &&
		want='"hugepage if site=huge_site"'
	echo "  found: THP $(thp_mode): expect the rule $want"
	$Q "$WORK/advhuge.adv.json" \
		"$ADV(\"huge_site\")[\"evidence\"][\"lifetime_ns\"] > 1e9" \
		"$ADV(\"huge_site\")[\"evidence\"][\"coarse_times\"] is True" || return 1
	# The advisor's touch rate is pages over the span less the program's waits for a CPU
	# (schedstat's run_delay, sampled at each scan).  Once in 11 loaded runs the kernel counted
	# 1.31 s of waiting in a span where this program slept 1.2 s: the rate then read as a burst
	# (populate), as the advisor must read such a sample.  The program says what the kernel
	# counted during its sleep; the coarse-times advice is expected only when that was small.
	local slept_wait
	slept_wait=$(sed -n 's/^sleep_wait_ms //p' "$WORK/advhuge.err")
	echo "  found: the kernel counted ${slept_wait:-?} ms of waiting for a CPU during the 1.2 s sleep"
	if [ "${slept_wait:-0}" -gt 300 ]; then
		echo "  (more than 300 ms: the advisor subtracts it, the rule is not checked)"
		return 0
	fi
	$Q "$WORK/advhuge.adv.json" \
		"\"--mode exact\" in $ADV(\"huge_site\")[\"reason\"]" \
		"$ADV(\"huge_site\")[\"rule\"] == $want"
}

t_advise_exact_mode_times() {
	RUN_ENV="PFSHIM_MODE=exact" run_both advexact $T/adv_burst || return 1
	report advexact || return 1
	# exact mode: the faults' own times (gathered per 100 us), so the burst that follows malloc at
	# once is timed at its first fault, where fast mode says "before the next scan".  Exact mode makes
	# each fault wait for its handler, more so on a loaded machine: the bounds come from the run.
	# The first touch comes within a tenth of the burst's own span after the allocation; the burst is
	# touched faster than the slow site (whose every page waits 400 us more).
	local B='site(proc(r), "burst_site")["evidence"]' S='site(proc(r), "slow_site")["evidence"]'
	$Q "$WORK/advexact.json" \
		'r["mode"] == "exact"' \
		"$B[\"exact_times\"] is True" \
		"$B[\"coarse_times\"] is False" \
		"$B[\"first_touch_after_ns\"][\"max\"] < $B[\"touch_spread_ns\"][\"min\"] / 10" \
		"max($B[\"storm_rate\"], $B[\"touch_rate\"]) > $S[\"touch_rate\"]" \
		"$S[\"touch_rate\"] < 10000" || return 1
	advise advexact || return 1
	$Q "$WORK/advexact.adv.json" \
		"$ADV(\"burst_site\")[\"advice\"] == \"populate\"" \
		"$ADV(\"slow_site\")[\"advice\"] == \"fine\""
}

t_advise_verify_nothing_to_verify() {
	# copy-on-write advice is a code change: nothing for a policy run to measure; the advice is shown
	(cd "$WORK" && "$CLI" advise --verify --format json -n 1 -- $T/adv_cow >"$WORK/vcow.json" \
		2>"$WORK/vcow.err") || { cat "$WORK/vcow.err"; return 1; }
	grep -q 'nothing to verify' "$WORK/vcow.err" || { echo "  not said"; return 1; }
	$Q "$WORK/vcow.json" 'r["policy"] == ""' "$ADV(\"cow_site\")[\"advice\"] == \"fork\""
}

t_advise_prefault_example_and_a_policy_run() {
	# examples/prefault: table_site is a burst (populate); populated_site maps with MAP_POPULATE,
	# resident before any touch, which must not read as "64 MiB allocated, nothing touched"
	run_both advpre $BUILD/examples/prefault || return 1
	advise advpre || return 1
	$Q "$WORK/advpre.adv.json" \
		"$ADV(\"table_site\")[\"advice\"] == \"populate\"" \
		'all(a["advice"] != "sparse" for a in r["advice"])' \
		"r[\"policy\"] == \"$(burst_actions) if site=table_site\"" || return 1
	# the same program under that policy: its pages were prefaulted, not sparse; nothing left to advise
	(export PFSHIM_POLICY='populate if site=table_site' && run_both advpre2 $BUILD/examples/prefault) || return 1
	advise advpre2 || return 1
	$Q "$WORK/advpre2.adv.json" 'all(a["advice"] != "sparse" for a in r["advice"])' 'r["policy"] == ""'
}

# Faults as the kernel takes them (issue 18): a 256 MiB table touched page by page under
# 'hugepage if site=load_table'.  The program prints the kernel's own count for the touching
# (getrusage); pfshim's first_touch_faults for the site must be within 3x of it, and diff and
# advise --verify must show the drop, where the kernel gave huge pages (THP "madvise" or "always").
t_advise_huge_table_counts_faults_as_the_kernel() {
	run_both htplain $T/huge_table || return 1
	(export PFSHIM_POLICY='hugepage if site=load_table' && run_both hthuge $T/huge_table) || return 1
	report htplain && report hthuge || return 1
	local k0 k1
	k0=$(sed -n 's/^minflt //p' "$WORK/htplain.err")
	k1=$(sed -n 's/^minflt //p' "$WORK/hthuge.err")
	[ -n "$k0" ] && [ -n "$k1" ] || { echo "  no minflt line"; return 1; }
	$Q "$WORK/htplain.json" \
		"$k0 / 3 <= site(proc(r), \"load_table\")[\"first_touch_faults\"] <= 3 * $k0" \
		'site(proc(r), "load_table")["first_touch_pages"] >= 65535' || return 1
	$Q "$WORK/hthuge.json" \
		"$k1 / 3 <= site(proc(r), \"load_table\")[\"first_touch_faults\"] <= 3 * $k1" \
		'site(proc(r), "load_table")["first_touch_pages"] >= 65535' \
		'site(proc(r), "load_table")["policy"] == "hugepage if site=load_table"' || return 1
	if [ "$k1" -ge $((k0 / 2)) ]; then
		skip "the drop: the kernel gave no huge pages here ($k0 -> $k1 faults; THP $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null))"
	fi
	"$CLI" diff --format json "$WORK/htplain" "$WORK/hthuge" >"$WORK/htdiff.json" || return 1
	$Q "$WORK/htdiff.json" \
		"site(r[\"processes\"][0], \"load_table\")[\"a\"][\"first_touch_faults\"] >= 65535" \
		"site(r[\"processes\"][0], \"load_table\")[\"b\"][\"first_touch_faults\"] <= 3 * $k1" \
		'site(r["processes"][0], "load_table")["verdict"] == "better"' || return 1
	(cd "$WORK" && "$CLI" advise --verify --format json -n 1 -p 'hugepage if site=load_table' -- $T/huge_table \
		>"$WORK/htver.json" 2>"$WORK/htver.err") || { cat "$WORK/htver.err"; return 1; }
	$Q "$WORK/htver.json" \
		'[s for s in r["sites"] if s["function"] == "load_table"][0]["without"]["first_touch_faults"] >= 65535' \
		"[s for s in r[\"sites\"] if s[\"function\"] == \"load_table\"][0][\"with\"][\"first_touch_faults\"] <= 3 * $k1" \
		'[s for s in r["sites"] if s["function"] == "load_table"][0]["with"]["first_touch_pages"] >= 65535' \
		'[s for s in r["sites"] if s["function"] == "load_table"][0]["helped"] is True'
}

# advcheck NAME: the advice of $WORK/NAME against its report (tests/lib/advcheck.py): no rule names
# an allocator's or a runtime's function, none is shadowed, every "sparse" is what the evidence says.
advcheck() {
	report "$1" && advise "$1" || return 1
	$PY "$ROOT/tests/lib/advcheck.py" "$WORK/$1.json" "$WORK/$1.adv.json"
}

# verify_check NAME CMD...: advise --verify of CMD (one run each, kept in $WORK/NAME), then advcheck
# of the advice it came from (the plain run, plain-0), with each row's first-touch faults against that
# site's own in the run without the policy (without-0: its rules made inert, each with size<0 added).
verify_check() {
	local n=$1
	shift
	(cd "$WORK" && "$CLI" advise --verify --format json -n 1 -o "$WORK/$n" -- "$@" >"$WORK/$n.json" \
		2>"$WORK/$n.err") || { cat "$WORK/$n.err"; return 1; }
	"$CLI" report --format json "$WORK/$n/plain-0" >"$WORK/$n.plain.json" &&
		"$CLI" report --format json "$WORK/$n/without-0" >"$WORK/$n.without.json" &&
		"$CLI" advise --format json "$WORK/$n/plain-0" >"$WORK/$n.adv.json" || return 1
	$Q "$WORK/$n.json" \
		'[x.strip() for x in r["policy_without"].split(";")] == [x.strip() + (",size<0" if " if " in x else " if size<0") for x in r["policy"].split(";")]' || return 1
	$PY "$ROOT/tests/lib/advcheck.py" "$WORK/$n.plain.json" "$WORK/$n.adv.json" "$WORK/$n.json" \
		"$WORK/$n.without.json" "$WORK/$n.plain.json"
}

t_advise_cxx_names_the_users_code() {
	run_both advcxx $T/names || return 1
	advcheck advcxx || return 1
	# the vector's 64 MiB is labelled main: main is in every stack, so the rule is narrowed by size
	$Q "$WORK/advcxx.adv.json" \
		'all(a["function"] not in ("operator new", "operator new[]") for a in r["advice"])' \
		"$ADV(\"app::Loader::load\")[\"rule\"].endswith(\"if site=app::Loader::load\")" \
		"$ADV(\"main\")[\"rule\"] is None or \"size>=64M\" in $ADV(\"main\")[\"rule\"]" || return 1
	# --verify: each row the site's own counts (found by its stack), the totals apart
	verify_check vcxx $T/names || return 1
	$Q "$WORK/vcxx.json" 'len(r["sites"]) >= 4' \
		'len(set(s["without"]["first_touch_faults"] for s in r["sites"])) > 1'
}

# CPython with numpy (Debian's python3-numpy, installed by make check): a rule for numpy's arrays
# (numpy's own object calls the allocator), none on the interpreter's functions.
t_advise_numpy() {
	/usr/bin/python3 -c 'import numpy' 2>/dev/null ||
		{ echo "  /usr/bin/python3 has no numpy: make check installs python3-numpy (tools/deps.sh test)"; return 1; }
	# the program unchanged under the shim; the advice checked on the plain run of --verify (the
	# same program in the same mode: one report and one advice of a 60 MB Python report, not two)
	run_both advnp /usr/bin/python3 "$ROOT/tests/preload/adv_numpy.py" || return 1
	verify_check vnp /usr/bin/python3 "$ROOT/tests/preload/adv_numpy.py" || return 1
	$Q "$WORK/vnp.adv.json" \
		'r["policy"] != ""' \
		'any(a["advice"] == "sparse" for a in r["advice"])' \
		'all(a["advice"] != "populate" or a["evidence"]["touched_share"] >= 0.5 for a in r["advice"])' || return 1
	"$CLI" advise "$WORK/vnp/plain-0" >"$WORK/vnp.adv" 2>"$WORK/vnp.adv.err" ||
		{ echo "  pfshim advise (text) failed:"; head -5 "$WORK/vnp.adv.err"; return 1; }
	# the rules act: the arrays' first-touch faults fall
	$Q "$WORK/vnp.json" 'r["output_unchanged"] is True' \
		'any(s["helped"] for s in r["sites"] if s["rule"])'
}

t_advise_examples() {
	local ex
	for ex in calloc cow_bgsave filemap forkpool prefault storm threads; do
		run_both "advex$ex" $BUILD/examples/$ex || return 1
		advcheck "advex$ex" || { echo "  examples/$ex"; return 1; }
	done
}
