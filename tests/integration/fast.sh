# Fast mode (the default): first touches and copy-on-write counted exactly per site, by page-map
# scans; the pagemap-read fallback; transparent huge pages kept; mode off.

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

needs_root t_fast_first_touch_unprivileged t_fast_cow_unprivileged
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
		"$CHILD[\"ppid\"] in [q[\"pid\"] for q in r[\"processes\"]]" \
		"site($PARENT, \"shared_site\")[\"first_touch_faults\"] == 17" \
		"site($CHILD, \"shared_site\")[\"first_touch_faults\"] == 20" \
		"site($CHILD, \"shared_site\")[\"allocations\"] == 0" || return 1
	# The child names the block it inherited by the parent's seq (its touches too).
	$PY "$ROOT/tests/lib/inherited_seq.py" "$WORK/tfork" $((4 << 20))
}

t_fast_scanner_thread_sees_touches_over_time() {
	run_both tthr $T/touch_threads || return 1
	report tthr || return 1
	# 8 steps 40 ms apart with a 10 ms interval: the touches arrive in several passes, not one at the end
	$Q "$WORK/tthr.json" 'site(proc(r), "worker_site")["first_touch_faults"] == 400' 'proc(r)["scans"] >= 8'
}

t_fast_cow_after_fork() {
	run_both cow $T/touch_cow || return 1
	report cow || return 1
	check_touch_cow "$WORK/cow.json"
}

# A kernel without MADV_POPULATE_READ/_WRITE (before 5.14; here a seccomp filter): the shim, which
# makes its own memory present with them (arena, log blocks, its code, its state at a fork), takes
# its page faults instead; the program's output and every count stay the same, and nothing is said.
t_fast_kernel_without_populate() {
	native_ref nopop $T/touch_cow || return 1
	(cd "$WORK" && PFSHIM_OUT="$WORK/nopop" $T/refuse populate env LD_PRELOAD=$LIB $T/touch_cow \
		>"$WORK/nopop.out" 2>"$WORK/nopop.err") || { cat "$WORK/nopop.err"; return 1; }
	cmp -s "$WORK/nopop.out" "$BASE/native/$NATIVE_KEY.out" || { echo "  output differs"; return 1; }
	grep -v '^pfshim: mode ' "$WORK/nopop.err" | grep . && return 1
	report nopop || return 1
	check_touch_cow "$WORK/nopop.json"
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
		"137 <= site($PARENT, \"table_site\")[\"first_touch_faults\"] <= 139" \
		"137 <= site($CHILD, \"table_site\")[\"cow_faults\"] <= 138"
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
# a huge page appearing is 512 first touches: the whole 64 MiB region, touched, is 16384 pages,
# and the faults are counted as the kernel takes them: one per huge page (the program's own count).
t_fast_keeps_transparent_huge_pages() {
	run_both thp $T/thp || return 1
	report thp || return 1
	local k
	k=$(program_faults thp) || return 1
	$Q "$WORK/thp.json" 'site(proc(r), "huge_site")["first_touch_pages"] == 16384' \
		"abs(site(proc(r), \"huge_site\")[\"first_touch_faults\"] - $k) <= 2"
}

# Copy-on-write tracking must not split huge pages: natively the parent's writes after the child is
# gone reuse them in place, and the program prints whether it still has them.
t_fast_fork_keeps_huge_pages() {
	run_both thpfork $T/thp_fork || return 1
	echo "  found: THP $(thp_mode); natively $(tr '\n' ' ' <"$WORK/thpfork.native")"
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
	# storm_site: the 64 MiB block's pages, less the chunk header's that malloc touched before
	# returning.  quiet_site: 1000 blocks of 64 B, the program's first mallocs: a fresh heap, from its
	# start through the last chunk and the top chunk's header after it, less the heap's first page,
	# which the shim's own start-up touched (pre-start memory; malloc's first block comes
	# after its tcache, whose size differs between glibc versions: heap_probe says where).  With THP
	# "always" huge pages blur the per-page count: then only lower bounds hold.
	local page start first chunk storm quiet
	page=$(heap_fact page) start=$(heap_fact start) first=$(heap_fact first) chunk=$(heap_fact chunk 64)
	storm=$(((64 << 20) / page - 1)) quiet=$(((start + first + 1000 * chunk + 16 + page - 1) / page - 1))
	echo "  found: page $page, heap start $start into its page, first chunk at $first, 64 B take $chunk:" \
		"storm_site $storm pages, quiet_site $quiet"
	local want_storm="== $storm" want_quiet="== $quiet"
	thp_always && want_storm=">= $((storm * 97 / 100))" want_quiet=">= $((quiet - 1))"
	$Q "$WORK/storm.json" \
		"site(proc(r), \"storm_site\")[\"first_touch_faults\"] $want_storm" \
		"site(proc(r), \"quiet_site\")[\"first_touch_faults\"] $want_quiet" \
		'proc(r)["sites"][0]["frames"][0]["function"] == "storm_site"' \
		'proc(r)["storms"][0]["top_site"] == site(proc(r), "storm_site")["id"]' || return 1
	report storm text || return 1
	grep -q 'storm_site (storm.c:' "$WORK/storm.text" || { head -30 "$WORK/storm.text"; return 1; }
}

# A program's own prefaulting takes no fault: MADV_POPULATE_WRITE, mlock, mlockall(MCL_CURRENT) make
# the pages present without one; its pages are no first touches, in fast mode and in exact mode, while
# the 16 pages it wrote before are; mlock2(MLOCK_ONFAULT) populates nothing: every page faults
# (tests/preload/self_populate.c).
self_populate_in() {
	local mode=$1 how
	for how in madvise mlock mlockall onfault; do
		RUN_ENV="PFSHIM_MODE=$mode" run_both "selfpop$mode$how" $T/self_populate $how || return 1
		report "selfpop$mode$how" || return 1
		local want=16
		grep -q '^populated$' "$WORK/selfpop$mode$how.err" || want=1024 # nothing populated: the writes fault
		echo "  found: $how: $(grep -v '^pfshim' "$WORK/selfpop$mode$how.err")"
		$Q "$WORK/selfpop$mode$how.json" "site(proc(r), \"self_pop_site\")[\"first_touch_faults\"] == $want" || return 1
	done
}
t_fast_program_populates_itself() { self_populate_in fast; }
t_exact_program_populates_itself() { self_populate_in exact; }
