# The examples (examples/, issue 9): each runs under the shim with the output it has without, and
# the report shows its phenomenon at the example's named sites.  Fast mode, or the mode in EX_MODE
# (t_example_exact_* run the anonymous-memory examples again in exact mode: the same counts).  Where
# transparent huge pages are "always", fast mode may see anonymous memory fault 512 pages at once:
# only lower bounds hold then (exact mode's registration keeps huge pages away: exact counts).

# ex_policy NAME POLICY PROG: PROG under the shim with PFSHIM_POLICY=POLICY, its output as the plain
# run's (run_both NAME before), and the JSON report of $WORK/NAME-policy.
ex_policy() {
	local name=$1 policy=$2 prog=$3
	rm -rf "${WORK:?}/$name-policy"
	(cd "$WORK" && PFSHIM_MODE=${EX_MODE:-fast} PFSHIM_QUIET=1 PFSHIM_POLICY="$policy" PFSHIM_OUT="$WORK/$name-policy" \
		LD_PRELOAD=$LIB "$prog" >"$WORK/$name-policy.out" 2>"$WORK/$name-policy.err") || return 1
	cmp -s "$WORK/$name.native" "$WORK/$name-policy.out" || { echo "  output differs under '$policy'"; return 1; }
	report "$name-policy"
}

# ex_count N: "== N", or ">= 97% of N" where huge pages blur the per-page count.
ex_count() {
	if thp_always && [ "${EX_MODE:-fast}" = fast ]; then echo ">= $(($1 * 97 / 100))"; else echo "== $1"; fi
}

# Demand paging and what calloc's zeroing costs: both 64 MiB blocks used a quarter; calloc takes
# faults only there (fresh mmap pages are zero: glibc does not clear them), malloc+memset everywhere.
t_example_calloc() {
	run_mode "${EX_MODE:-fast}" calloc $BUILD/examples/calloc || return 1
	grep -q '^calloc_site: 64 MiB, 4096 pages used, all zero: yes$' "$WORK/calloc.out" || return 1
	# calloc: 4096 pages used, less the chunk header's page written inside calloc; memset: the
	# 16385 pages the block spans, less the header's.
	$Q "$WORK/calloc.json" \
		"site(proc(r), \"calloc_site\")[\"first_touch_faults\"] $(ex_count 4095)" \
		'site(proc(r), "calloc_site")["first_touch_faults"] <= 4096' \
		'site(proc(r), "calloc_site")["kind"] == "calloc"' \
		"site(proc(r), \"malloc_memset_site\")[\"first_touch_faults\"] $(ex_count 16384)"
}

# A background save: the parent's writes while the child shares the table are copy-on-write faults
# in the parent (one per page written), none in the child, which only reads.
t_example_cow_bgsave() {
	run_mode "${EX_MODE:-fast}" bgsave $BUILD/examples/cow_bgsave || return 1
	grep -q '^child: snapshot matches the table at fork (exit 0)$' "$WORK/bgsave.out" || { cat "$WORK/bgsave.out"; return 1; }
	local parent=$PARENT child=$CHILD
	$Q "$WORK/bgsave.json" 'len(r["processes"]) == 2' \
		"site($parent, \"table_site\")[\"first_touch_faults\"] $(ex_count 16384)" \
		"site($parent, \"table_site\")[\"cow_faults\"] == 4096" \
		"site($child, \"table_site\")[\"cow_faults\"] == 0" \
		"site($child, \"table_site\")[\"first_touch_faults\"] == 0"
}

# Prefaulting: the same fill with and without a populate policy, the same output; the policy moves
# table_site's 65535 first touches (256 MiB less the header's page) into the allocation, and the
# program's own MAP_POPULATE mapping has none in either run.
t_example_prefault() {
	run_mode "${EX_MODE:-fast}" prefault $BUILD/examples/prefault || return 1
	grep -q '^table_site: allocation .* ms, touch phase .* ms$' "$WORK/prefault.err" || { cat "$WORK/prefault.err"; return 1; }
	ex_policy prefault 'populate if site=table_site' $BUILD/examples/prefault || return 1
	$Q "$WORK/prefault.json" \
		"site(proc(r), \"table_site\")[\"first_touch_faults\"] $(ex_count 65535)" \
		'site(proc(r), "table_site")["prefaulted_pages"] == 0' \
		'site(proc(r), "populated_site")["first_touch_faults"] == 0' \
		'site(proc(r), "populated_site")["kind"] == "mmap"' || return 1
	$Q "$WORK/prefault-policy.json" \
		'site(proc(r), "table_site")["first_touch_faults"] == 0' \
		"site(proc(r), \"table_site\")[\"prefaulted_pages\"] $(ex_count 65535)" \
		'site(proc(r), "table_site")["policy"] == "populate if site=table_site"' \
		'site(proc(r), "populated_site")["first_touch_faults"] == 0' || return 1
	# pfshim diff of the two runs: table_site better by its first touches, populated_site the same.
	diff_json prefault-diff prefault prefault-policy || return 1
	$Q "$WORK/prefault-diff.json" \
		'site(r["processes"][0], "table_site")["verdict"] == "better"' \
		'site(r["processes"][0], "table_site")["change"]["faults"] == -site(r["processes"][0], "table_site")["a"]["first_touch_faults"]' \
		'site(r["processes"][0], "table_site")["change"]["prefaulted_pages"] == site(r["processes"][0], "table_site")["b"]["prefaulted_pages"] > 0' \
		'site(r["processes"][0], "populated_site")["change"]["faults"] == 0'
}

# A file mapping read sequentially and randomly, from a file dropped from the page cache: every page
# read is a first touch of its mapping (8,192 pages each), and a read fault maps the cached pages
# around it (fault-around) with it: the faults are the kernel's count of each phase (the program's
# getrusage), in exact mode but for the few major faults (no fault event is for them), in fast mode
# one per 64 KiB window (the kernel may map a large folio of the page cache at once: within a
# quarter). populate_read moves them into mmap; random advice changes no count, only major faults.
t_example_filemap() {
	run_mode "${EX_MODE:-fast}" filemap $BUILD/examples/filemap || return 1
	grep -q '^random_map_site: 8192 pages read, sum of page numbers 33550336 (expected 33550336)$' "$WORK/filemap.out" || return 1
	local s maj all check majors=0
	for s in seq_map_site random_map_site; do
		read -r maj all < <(sed -n "s/^$s: \([0-9]*\) major faults, \([0-9]*\) faults in all.*/\1 \2/p" "$WORK/filemap.err")
		[ -n "$all" ] || { cat "$WORK/filemap.err"; return 1; }
		echo "  found: $s: the kernel's $all faults ($maj major)"
		if [ "${EX_MODE:-fast}" = exact ]; then
			check="$all - $maj - 2 <= site(proc(r), \"$s\")[\"first_touch_faults\"] <= $all"
		else	# one a window of fault_around_bytes (64 KiB unless debugfs says), the mapping's ends aside
			local win
			win=$(cat /sys/kernel/debug/fault_around_bytes 2>/dev/null || echo 65536)
			check="abs(site(proc(r), \"$s\")[\"first_touch_faults\"] - $all) <= $all / 4"
			check="$check and $((32 << 20)) // $win <= site(proc(r), \"$s\")[\"first_touch_faults\"] <= $((32 << 20)) // $win + 1"
		fi
		$Q "$WORK/filemap.json" "site(proc(r), \"$s\")[\"kind\"] == \"mmap-file\"" \
			"site(proc(r), \"$s\")[\"first_touch_pages\"] == 8192" "$check" || return 1
		majors=$((${majors:-0} + maj))
	done
	# the process's major faults, the kernel's, at least the two phases' (the program's own count)
	$Q "$WORK/filemap.json" "proc(r)[\"coverage\"][\"kernel_major_faults\"] >= $majors" || return 1
	report filemap text || return 1
	[ "$majors" = 0 ] || grep -q "^#   major faults: [0-9]* (the program waited for a page read from disk" "$WORK/filemap.text" ||
		{ grep '^#   ' "$WORK/filemap.text" | head; return 1; }
	ex_policy filemap 'populate_read if kind=mmap-file' $BUILD/examples/filemap || return 1
	$Q "$WORK/filemap-policy.json" \
		'all(site(proc(r), s)["first_touch_faults"] == 0 for s in ("seq_map_site", "random_map_site"))' \
		'all(site(proc(r), s)["prefaulted_pages"] == 8192 for s in ("seq_map_site", "random_map_site"))' || return 1
	ex_policy filemap 'random if kind=mmap-file' $BUILD/examples/filemap || return 1
	$Q "$WORK/filemap-policy.json" \
		'all(site(proc(r), s)["first_touch_pages"] == 8192 for s in ("seq_map_site", "random_map_site"))' \
		'site(proc(r), "seq_map_site")["policy"] == "random if kind=mmap-file"'
}

# Four threads' storms land at one site: 4 x (4096 pages less the header's); the small blocks'
# 4 x 20000 allocations are counted exactly.  Their first touches are the arenas' heap pages:
# 80000 blocks of 112 B need 2188 pages; arena headers and the partial last pages add a few.
t_example_threads() {
	run_mode "${EX_MODE:-fast}" threads $BUILD/examples/threads || return 1
	$Q "$WORK/threads.json" \
		"site(proc(r), \"worker_buffer_site\")[\"first_touch_faults\"] $(ex_count 16380)" \
		'site(proc(r), "worker_buffer_site")["allocations"] == 4' \
		'site(proc(r), "worker_small_site")["allocations"] == 80000' \
		'2188 <= site(proc(r), "worker_small_site")["first_touch_faults"] <= 2200'
}

# A fork-worker pool: the table is first-touched in the parent only; each worker's counter writes
# are 8 copy-on-write faults in that worker, its 1 MiB result buffer 256 first touches.
t_example_forkpool() {
	run_mode "${EX_MODE:-fast}" forkpool $BUILD/examples/forkpool || return 1
	grep -q '^parent: its table unchanged by the workers.* yes$' "$WORK/forkpool.out" || return 1
	local parent=$PARENT
	local workers='[p for p in r["processes"] if p["pid"] not in [q["ppid"] for q in r["processes"]]]'
	$Q "$WORK/forkpool.json" 'len(r["processes"]) == 5' \
		"site($parent, \"table_site\")[\"first_touch_faults\"] $(ex_count 16384)" \
		"site($parent, \"table_site\")[\"cow_faults\"] == 0" \
		"len($workers) == 4" \
		"all(site(w, \"table_site\")[\"cow_faults\"] == 8 for w in $workers)" \
		"all(site(w, \"table_site\")[\"first_touch_faults\"] == 0 for w in $workers)" \
		"all(site(w, \"result_site\")[\"first_touch_faults\"] == 256 for w in $workers)"
}

# make demo: the storm's site named with its count, then the same site prefaulted by the policy.
t_example_demo() {
	local storm='== 16383'
	thp_always && storm='>= 15800'
	sh "$ROOT/examples/demo.sh" "$BUILD" "$WORK/demo" >"$WORK/demo.out" 2>&1 || { tail -20 "$WORK/demo.out"; return 1; }
	local n
	n=$(awk '/^== the report/ {on = 1} on && /#[0-9]+  storm_site \(storm.c:/ {print $6; exit}' "$WORK/demo.out")
	[ -n "$n" ] && $PY -c "import sys; sys.exit(0 if $n $storm else 1)" || {
		echo "  the demo's report does not show storm_site with $storm first touches (found '$n')"; return 1; }
	local pre=$n
	thp_always && pre='[0-9]*' # populated with huge pages where THP is "always"
	grep -q "policy: populate if site=storm_site (1 applied, $pre pages prefaulted)" "$WORK/demo.out" || {
		echo "  the demo's policy run does not show the storm's pages prefaulted"; return 1; }
	grep -Eq "^ +1 +$n +0 +-$n +better +storm_site \\(storm.c:" "$WORK/demo.out" || {
		echo "  the demo's diff does not rank storm_site first, better by its faults"; return 1; }
}

# Exact mode counts what fast mode counts on each example: t_example_exact_NAME.
for ex in calloc cow_bgsave prefault threads forkpool filemap; do
	eval "t_example_exact_$ex() { EX_MODE=exact t_example_$ex; }"
done
unset ex
