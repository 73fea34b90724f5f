# A program whose heap grew before the shim started (issue 24): its .preinit_array and its
# library's constructor malloc before the shim's constructor runs (tests/preload/ctor_heap.c,
# tests/preload/lib/ctorheap.c).  In both modes: the program's output as without the shim, the
# later allocations counted, fresh heap pages charged to the site that carved them, and none to the
# site that reuses chunks freed before the shim started (their pages were present long before).

# ctor_heap_check MODE: the test in one mode
ctor_heap_check() {
	local mode=$1 name=ctor-$1
	run_mode "$mode" "$name" $T/ctor_heap || return 1
	# fresh_site: 20000 blocks of 64 B on fresh heap, the pages their chunks span, give or take
	# the partly used pages at either end: the first page was present before the shim started when
	# the top chunk's header was on it (pre-start memory), the page after the last chunk is carved
	# when malloc writes the new top's header there
	local page chunk n
	page=$(heap_fact page) chunk=$(heap_fact chunk 64)
	n=$(((20000 * chunk + page - 1) / page))
	echo "  found: page $page, 64 B take $chunk: fresh_site spans about $n pages"
	$Q "$WORK/$name.json" \
		'site(proc(r), "reuse_site")["allocations"] == 2000' \
		'site(proc(r), "reuse_site")["bytes_allocated"] == 2000 * 100' \
		'site(proc(r), "fresh_site")["allocations"] == 20000' \
		'site(proc(r), "fresh_site")["bytes_allocated"] == 20000 * 64' \
		"$((n - 2)) <= site(proc(r), \"fresh_site\")[\"first_touch_faults\"] <= $((n + 1))"
}

# reused_check MODE: the chunks the library freed were on pages it had touched: reusing them takes
# no page fault, so reuse_site has no first touch.
reused_check() {
	$Q "$WORK/ctor-$1.json" 'site(proc(r), "reuse_site")["first_touch_faults"] == 0'
}

t_heap_grown_before_start() {
	ctor_heap_check fast
}

t_exact_heap_grown_before_start() {
	ctor_heap_check exact && reused_check exact
}

# Apart, so that its failure names the bug: fast mode charged the pages of chunks freed before the
# shim started to the site that reused them (110 first touches on this machine).
t_heap_grown_before_start_reused_chunks_fault_nothing() {
	ctor_heap_check fast && reused_check fast
}

# A library's constructor allocates and fills memory before the shim's constructor runs
# (tests/preload/lib/ctorearly.c, as libLLVM's do: rust-lld lost about 60 heap pages, rustc
# 230 extents' pages of jemalloc that way): 64 pages it mapped and wrote itself before any malloc,
# then a 1 MiB block from malloc written whole.  The shim starts at that first malloc: the block
# is the constructor's site's, its 256 pages written after the malloc returned its first touches
# (none before: the library's allocation was not even logged); the 64 pages held when the shim
# started are first touches of the pre-start memory (none before).
ctor_early_check() {
	local mode=$1 name=ctorearly-$1
	run_mode "$mode" "$name" $T/ctor_early || return 1
	$Q "$WORK/$name.json" \
		'site(proc(r), "ctorearly_init")["allocations"] == 1' \
		'site(proc(r), "ctorearly_init")["bytes_allocated"] == 1 << 20' \
		'site(proc(r), "ctorearly_init")["first_touch_faults"] == 256' \
		'kind_faults(proc(r), "pre-start") >= 64'
}

t_library_constructor_allocations_counted() {
	ctor_early_check fast
}

t_exact_library_constructor_allocations_counted() {
	ctor_early_check exact
}

# An allocator of the program's own, in its executable (tests/preload/own_malloc_lock.c, as rustc
# links jemalloc), maps its memory under a lock that does not nest, first for its library's
# constructor (libctorheap: 4000 blocks of 100 B, about 500 KiB with its headers), before the
# shim's constructor.  The shim must not start inside that mmap (its start mallocs: it hung until
# the timeout), and the pages the constructor wrote there are counted when it starts, as
# pre-start memory's first touches.
own_allocator_check() {
	local mode=$1 name=ownlock-$1
	run_mode "$mode" "$name" $T/own_malloc_lock || return 1
	$Q "$WORK/$name.json" 'kind_faults(proc(r), "pre-start") >= 100'
}

t_own_allocator_mapping_before_start() {
	own_allocator_check fast
}

t_exact_own_allocator_mapping_before_start() {
	own_allocator_check exact
}

# A library's constructor whose first allocation is libc's, made under gettext's lock
# (tests/preload/lib/ctorgettext.c: bindtextdomain, as libgpg-error's constructor, which postgres
# links): the shim does not start inside it.  A shim that did, with a log directory it could not
# use, said why through strerror, which took that lock again and left it broken: the program hung
# at its next bindtextdomain (until the timeout).  Also traced normally, the same output.
# Again with another allocator linked after that library (tests/preload/ctor_gettext_alloc.c,
# lib/bumpalloc.c: the malloc the shim's calls on to): the shim took that allocator's object for
# libc's, so libc's allocation started it, and the program hung the same way.
ctor_gettext_check() {
	local prog=$1 name=ctorgt-nolog-$1 rc
	native_ref "$name" $T/$prog || return 1
	# a directory that cannot be made, for a reason strerror names (/sys refuses it)
	(cd "$WORK" && exec timeout 60 env PFSHIM_OUT=/sys/pfshim-test-no-dir LD_PRELOAD="$LIB" $T/$prog \
		>"$WORK/$name.out" 2>"$WORK/$name.err")
	rc=$?
	[ "$rc" = 0 ] && cmp -s "$WORK/$name.native" "$WORK/$name.out" || {
		echo "  $prog: exit status $rc (124: it hung), or its output differs:"; cat "$WORK/$name.out" "$WORK/$name.err"
		return 1; }
	grep -q '^pfshim: cannot use log directory /sys/pfshim-test-no-dir (' "$WORK/$name.err" || {
		echo "  $prog: no warning about the log directory:"; cat "$WORK/$name.err"; return 1; }
	run_mode fast ctorgt-fast-$prog $T/$prog
}

t_library_constructor_allocating_inside_libc() {
	ctor_gettext_check ctor_gettext && ctor_gettext_check ctor_gettext_alloc
}

# The shim brings no library into the program's global scope (tools/libunwind.sh): a C program
# whose C++ library throws (tests/preload/cxx_from_c.c, lib/cxxthrow.cpp) has its exceptions
# unwound by libgcc_s, as natively, in both modes.  While the shim needed the shared
# libunwind.so.8, its _Unwind_RaiseException took them (each 50-70 times as slow).
t_cxx_exceptions_keep_the_programs_unwinder() {
	! readelf -d "$LIB" | grep -q 'NEEDED.*libunwind' ||
		skip "the shim links the shared libunwind here (its build said why: tools/libunwind.sh)"
	local m
	for m in fast exact; do
		RUN_ENV="PFSHIM_MODE=$m" run_both "cxxexc$m" "$T/cxx_from_c" || { echo "  in $m mode"; return 1; }
	done
	grep -q "by libgcc_s" "$WORK/cxxexcfast.native" || { echo "  natively: $(cat "$WORK/cxxexcfast.native")"; return 1; }
}
