# Fidelity: the shim leaves the program's faults as the kernel takes them natively, and counts them.

# Exact mode resolves a read of a missing page the way this kernel does natively (zero page or a
# page of its own, probed at start): a read then a write costs the program the same faults as
# without the shim (it took twice as many where reads map fresh pages), and each page is one first
# touch.  The program prints its own fault count, so run_both compares them.
t_exact_read_then_write_faults_as_native() {
	RUN_ENV="PFSHIM_MODE=exact" run_both xrw $T/read_then_write 2000 || return 1
	report xrw || return 1
	$Q "$WORK/xrw.json" 'site(proc(r), "read_write_site")["first_touch_faults"] == 2000'
}

# Memory that is no allocation is accounted by kind: an object's .bss (data), memory mapped with
# the raw system call (unhooked), a thread's stack and the main stack.  The program prints the
# kernel's own count of each phase's faults (getrusage); pfshim's count of each kind is that, give
# or take the few pages a phase's own code and frames touch.
t_fidelity_memory_by_kind() {
	run_both cats $T/categories || return 1
	report cats || return 1
	local k
	k=$(grep '^faults ' "$WORK/cats.err") || { echo "  the program's counts are missing"; return 1; }
	echo "$k" | {
		read -r _ _ bss _ raw _ thread _ stack
		$Q "$WORK/cats.json" \
			"abs(kind_faults(proc(r), 'data', 'categories') - $bss) <= 4" \
			"abs(kind_faults(proc(r), 'unhooked') - $raw) <= 4" \
			"abs(kind_faults(proc(r), 'thread-stack') - $thread) <= 4" \
			"abs(kind_faults(proc(r), 'stack') - $stack) <= 4" \
			"$bss >= 300 and $raw >= 200 and $thread >= 90 and $stack >= 80"
	}
}

# Every report says what the kernel counted for the process beside what it accounts for; on a
# program whose faults are nearly all in its memory, nearly all of them.
t_fidelity_coverage_line() {
	run_both cov $BUILD/examples/storm || return 1
	report cov || return 1
	report cov text || return 1
	$Q "$WORK/cov.json" \
		'proc(r)["coverage"]["kernel_minor_faults"] >= 16384' \
		'proc(r)["coverage"]["accounted_faults"] == proc(r)["totals"]["first_touch_faults"] + proc(r)["totals"]["cow_faults"]' \
		'proc(r)["coverage"]["accounted_faults"] >= 0.95 * proc(r)["coverage"]["kernel_minor_faults"]' || return 1
	grep -q '^#   coverage: the kernel counted [0-9]* minor faults, the report accounts for [0-9]*' "$WORK/cov.text" ||
		{ echo "  no coverage line"; return 1; }
}

# A process whose allocations never reach the hooks is told so in one line, and its faults are
# still counted by the memory they hit ([mapped without libc]).
t_fidelity_no_allocation_said() {
	run_both noalloc $T/no_alloc || return 1
	report noalloc || return 1
	grep -q "made no allocation through the shim's hooks" "$WORK/noalloc.err" || {
		echo "  no line about the missing allocations:"; cat "$WORK/noalloc.err"; return 1; }
	$Q "$WORK/noalloc.json" "kind_faults(proc(r), 'unhooked') == 2000"
}

# A child killed by SIGTERM (a pool's worker) still has its last touches counted (1000 pages, less
# the first, which malloc's chunk header made present), ends as it would (the parent sees the
# signal), and the program sees SIGTERM's default action.
t_fidelity_killed_child_counted() {
	run_both killedchild $T/killed_child || return 1
	grep -qx 'child killed by signal 15' "$WORK/killedchild.out" && grep -qx 'SIGTERM default' "$WORK/killedchild.out" || {
		cat "$WORK/killedchild.out"; return 1; }
	report killedchild || return 1
	$Q "$WORK/killedchild.json" \
		'[p for p in r["processes"] if sites(p, "worker_site")][0]["end_reason"] == "signal"' \
		'site([p for p in r["processes"] if sites(p, "worker_site")][0], "worker_site")["first_touch_faults"] == 999'
}

# Fork then exec: the parent's writes after the child is gone are counted as the kernel takes them
# natively (one fault a page: the fork left them write-protected); memory marked MADV_DONTFORK is
# not shared with the child and takes no copy-on-write fault at all.
t_fidelity_fork_exec_and_dontfork() {
	local ROOT_PROC='[p for p in r["processes"] if p["pid"] == p["root_pid"]][0]'
	run_both forkexec $T/fork_exec_writes || return 1
	report forkexec || return 1
	(cd "$WORK" && $T/fork_exec_writes >/dev/null 2>"$WORK/forkexec-native.err") || return 1
	local shared dontfork traced
	shared=$(program_faults forkexec-native shared) && dontfork=$(program_faults forkexec-native dontfork) &&
		traced=$(program_faults forkexec shared) || return 1
	echo "  found: the kernel's write faults after the fork: $shared natively, $traced traced"
	# pfshim's count is the kernel's; and the program takes as many faults traced as natively
	$Q "$WORK/forkexec.json" \
		"$dontfork == 0 and $shared >= 9500" \
		"abs(site($ROOT_PROC, 'shared_site')['cow_faults'] - $shared) <= 0.05 * $shared" \
		"site($ROOT_PROC, 'dontfork_site')['cow_faults'] == 0" \
		"abs($traced - $shared) <= 0.05 * $shared"
}

# Shared memory is its own kind, with no copy-on-write: a MAP_SHARED|MAP_ANONYMOUS mapping and a
# SysV segment written by a parent, the mapping written again by 4 forked workers; each process's
# count on it is the kernel's for its loop (the program prints them).  (Reads map up to 16 pages of
# an existing segment per fault: fast mode counts pages mapped, docs/analyzer.md.)
t_fidelity_shared_memory() {
	run_both sharedw $T/shared_workers || return 1
	report sharedw || return 1
	local parent shm
	read -r _ parent _ shm < <(grep '^parent ' "$WORK/sharedw.err")
	[ -n "$shm" ] || { echo "  the program's counts are missing"; return 1; }
	local workers
	workers=$(awk '$1 == "worker" {printf "%s%s", sep, $2; sep = ","}' "$WORK/sharedw.err")
	$Q "$WORK/sharedw.json" \
		'len(r["processes"]) == 5' \
		"abs(site([p for p in r['processes'] if p['pid'] == p['root_pid']][0], 'shared_site')['first_touch_faults'] - $parent) <= 0.05 * $parent" \
		"site([p for p in r['processes'] if p['pid'] == p['root_pid']][0], 'sysv_site')['first_touch_faults'] == $shm" \
		"all(abs(site(p, 'shared_site')['first_touch_faults'] - max([$workers])) <= 0.05 * max([$workers]) for p in r['processes'] if p['pid'] != p['root_pid'])" \
		'all(s["cow_faults"] == 0 for p in r["processes"] for s in p["sites"] if s["kind"] == "shared")' \
		'all(s["kind"] == "shared" for p in r["processes"] for s in sites(p, "shared_site"))'
}

# The same in exact mode: the parent's first touches of the shared mapping are the kernel's, and no
# write to shared memory is taken for a copy in the workers (their inherited ranges were
# write-protected like private ones, and every worker's write counted as copy-on-write).  A
# worker's faults on pages already in the segment are minor faults userfaultfd does not report,
# and a System V segment cannot be registered: the report says which ranges it could not watch.
t_exact_fidelity_shared_memory() {
	RUN_ENV=PFSHIM_MODE=uffd run_both xsharedw $T/shared_workers || return 1
	report xsharedw || return 1
	report xsharedw text || return 1
	local parent
	read -r _ parent _ _ < <(grep '^parent ' "$WORK/xsharedw.err")
	[ -n "$parent" ] || { echo "  the program's counts are missing"; return 1; }
	$Q "$WORK/xsharedw.json" \
		'r["mode"] == "exact"' \
		'len(r["processes"]) == 5' \
		"abs(site([p for p in r['processes'] if p['pid'] == p['root_pid']][0], 'shared_site')['first_touch_faults'] - $parent) <= 0.05 * $parent" \
		'all(s["cow_faults"] == 0 for p in r["processes"] for s in p["sites"] if s["kind"] == "shared")' || return 1
	grep -q 'could not be registered with userfaultfd' "$WORK/xsharedw.text" || {
		echo "  the System V segment's range is not said to be unwatched"; return 1; }
}

# A heap grown and trimmed again and again (glibc gives the pages back inside free, where no hook
# sees the break move): every round's pages are first touches to the kernel, and to pfshim (it
# counted the first round only; Python's pool workers showed 0.6 of the kernel's count, 0.3 in
# exact mode).  heap_trim_check MODE: in one mode.
heap_trim_check() {
	local name=heaptrim-$1 k
	RUN_ENV=PFSHIM_MODE=$1 run_both "$name" $T/heap_trim || return 1
	report "$name" || return 1
	k=$(program_faults "$name") || return 1
	echo "  found: the kernel counted $k faults for the rounds"
	$Q "$WORK/$name.json" \
		"r[\"mode\"] == \"$1\"" \
		'site(proc(r), "grow_site")["allocations"] == 10' \
		"abs(site(proc(r), \"grow_site\")[\"first_touch_faults\"] - $k) <= 0.05 * $k"
}

t_fidelity_heap_trimmed_and_grown_again() {
	heap_trim_check fast
}

t_exact_fidelity_heap_trimmed_and_grown_again() {
	heap_trim_check exact
}

# The same when the free that trims is a small block's (no record of its own): glibc merges the
# freed blocks of a round into the top at the free of the last one and gives the pages back, long
# before a periodic scan comes; so a free that may trim the heap has it read first (gcc's cc1 had
# 0.90 of the kernel's first touches in fast mode, a run of this program 102 of 4,482).  Blocks of
# 200 bytes too, small enough for a tcache bin: the free that trims is one whose bin is full (the
# report had 32 of the kernel's 4,728 first touches of such a program); and the same in the main
# thread of a program that has had another thread.
# heap_trim_small_check MODE [SIZE [threaded]]: in one mode, blocks of SIZE bytes (default 4,000).
heap_trim_small_check() {
	local name=heaptrimsmall-$1${2:+-$2}${3:+-$3} k
	RUN_ENV=PFSHIM_MODE=$1 run_both "$name" $T/heap_trim_small ${2:-} ${3:-} || return 1
	report "$name" || return 1
	k=$(program_faults "$name") || return 1
	echo "  found: the kernel counted $k faults for the rounds"
	$Q "$WORK/$name.json" \
		"r[\"mode\"] == \"$1\"" \
		"site(proc(r), \"small_site\")[\"allocations\"] == 20 * ((1 << 20) // ${2:-4000})" \
		"$k >= 2000" \
		"abs(site(proc(r), \"small_site\")[\"first_touch_faults\"] - $k) <= 0.05 * $k"
}

t_fidelity_heap_trimmed_by_small_free() {
	heap_trim_small_check fast
}

t_fidelity_heap_trimmed_by_tcache_sized_free() {
	heap_trim_small_check fast 200
}

t_fidelity_heap_trimmed_by_tcache_sized_free_threaded() {
	heap_trim_small_check fast 200 threaded
}

t_exact_fidelity_heap_trimmed_by_small_free() {
	heap_trim_small_check exact
}

# The heap given back and grown again between forks, by free and malloc_trim: its mapping is new
# to the kernel each round, not registered for write-protect, and the pages malloc_trim gives back
# inside the allocator go without a hook seeing them.  Each child: every page it wrote, a copy
# each, the kernel's count of the writes' faults beside it (within one: now and then the kernel
# counts a fault of another page in the same span).  The parent: at least every page it wrote
# and every header page its frees wrote, at most what the kernel counted after its first fork (a
# round's copies were lost whenever no read of the heap fell between its writes and the trim;
# tests/preload/heap_trim_fork.c).
# heap_trim_fork_check MODE: in one mode.
heap_trim_fork_check() {
	local name=heaptrimfork-$1 k n least=0 checks=() i
	local root='[p for p in r["processes"] if p["pid"] == p["root_pid"]][0]'
	local kids='sorted([p for p in r["processes"] if p["pid"] != p["root_pid"]], key=lambda p: p["start_ns"])'
	RUN_ENV=PFSHIM_MODE=$1 run_both "$name" $T/heap_trim_fork || return 1
	report "$name" || return 1
	for i in 0 1 2; do
		k=$(program_faults "$name" child $i) || return 1
		n=$(program_count pages "$name" child $i) || return 1
		[ "$n" -ge $((128 - 32 * i)) ] || { echo "  the child of round $i wrote $n pages"; return 1; }
		checks+=("site($kids[$i], \"round_site\")[\"cow_faults\"] == $n" "abs($n - $k) <= 1")
		n=$(program_count pages "$name" parent $i) || return 1
		least=$((least + n))
		n=$(program_count pages "$name" parent-headers $i) || return 1
		least=$((least + n))
	done
	k=$(program_faults "$name" parent-after-fork) || return 1
	echo "  found: the parent wrote $least pages of its blocks and headers, the kernel counted $k faults after its first fork"
	$Q "$WORK/$name.json" "r[\"mode\"] == \"$1\"" "len($kids) == 3" "${checks[@]}" \
		"$least <= site($root, \"round_site\")[\"cow_faults\"] <= $k"
}

t_fidelity_heap_trimmed_between_forks() {
	heap_trim_fork_check fast
}

t_exact_fidelity_heap_trimmed_between_forks() {
	heap_trim_fork_check exact
}

# Another allocator's extents (jemalloc): two sites' blocks in the same extents, 64-byte and
# 160-byte ones in slabs of their own.  Each site is charged its own pages' first touches, as the
# kernel counts each phase (the program prints getrusage's count), not the call that made jemalloc
# map the extent; a forked child's writes to one site's blocks are that site's copies, none the
# other's.  Neither site has a frame of jemalloc's or the shim's.  jemalloc_sites_check MODE.
jemalloc_sites_check() {
	local name=jemsites-$1 small mid child
	RUN_ENV=PFSHIM_MODE=$1 run_both "$name" $T/opt_jemalloc_sites || return 1
	ldd $T/opt_jemalloc_sites | grep -q libjemalloc || { echo "  not linked with jemalloc"; return 1; }
	report "$name" || return 1
	small=$(program_faults "$name" small) && mid=$(program_faults "$name" mid) &&
		child=$(program_faults "$name" child mid) || return 1
	echo "  found: the kernel counted small $small, mid $mid, the child's copies $child"
	# a site's malloc blocks (the extent's mapping, made inside one of its mallocs, is a site of kind mmap)
	local ROOT_PROC='[p for p in r["processes"] if p["pid"] == p["root_pid"]][0]'
	local CHILD='[p for p in r["processes"] if p["pid"] != p["root_pid"]][0]'
	$Q "$WORK/$name.json" \
		"r[\"mode\"] == \"$1\"" \
		"$small >= 250 and $mid >= 2400 and $child >= 2400" \
		"abs(sum(s['first_touch_faults'] for s in sites($ROOT_PROC, 'small_records') if s['kind'] == 'malloc') - $small) <= 0.05 * $small + 2" \
		"abs(sum(s['first_touch_faults'] for s in sites($ROOT_PROC, 'mid_records') if s['kind'] == 'malloc') - $mid) <= 0.05 * $mid + 2" \
		"abs(sum(s['cow_faults'] for s in sites($CHILD, 'mid_records') if s['kind'] == 'malloc') - $child) <= 0.05 * $child + 2" \
		"sum(s['cow_faults'] for s in sites($CHILD, 'small_records')) <= 2" \
		"max([s['first_touch_faults'] + s['cow_faults'] for p in r['processes'] for s in p['sites'] if s['kind'] == 'mmap'] + [0]) < 20" \
		"not any((f['module'] or '').startswith(('libpfshim', 'libjemalloc')) for p in r['processes'] for s in sites(p, 'small_records') + sites(p, 'mid_records') for f in s['frames'])"
}

t_fidelity_jemalloc_sites_per_page() {
	jemalloc_sites_check fast
}

t_exact_fidelity_jemalloc_sites_per_page() {
	jemalloc_sites_check exact
}

# A fork child handler registered before the shim started (a needed library's constructor, as
# jemalloc registers its own at its first malloc) writes 64 pages the library mapped then: the
# child's copies are counted (the shim's child set-up runs ahead of it; it ran after, and none
# was).  Its parent handler, which runs before the shim's, writes 32 of them: in exact mode the
# parent's copies are counted too (fast mode's protection comes after them at a process's first
# fork: not asserted).  atfork_early_check MODE.
atfork_early_check() {
	local name=atforkearly-$1
	RUN_ENV=PFSHIM_MODE=$1 run_both "$name" $T/atfork_early || return 1
	grep -qx 'pages 64' "$WORK/$name.out" || { echo "  the library did not map its pages"; return 1; }
	report "$name" || return 1
	$Q "$WORK/$name.json" \
		"r[\"mode\"] == \"$1\"" \
		"len(r['processes']) == 2" \
		"64 <= sum(s['cow_faults'] for p in r['processes'] if p['pid'] != p['root_pid'] for s in p['sites'] if s['kind'] == 'pre-start') <= 70" || return 1
	[ "$1" = exact ] || return 0
	$Q "$WORK/$name.json" \
		"32 <= sum(s['cow_faults'] for p in r['processes'] if p['pid'] == p['root_pid'] for s in p['sites'] if s['kind'] == 'pre-start') <= 38"
}

t_fidelity_fork_handler_before_shim() {
	atfork_early_check fast
}

t_exact_fidelity_fork_handler_before_shim() {
	atfork_early_check exact
}
