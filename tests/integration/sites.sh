# Call sites: what the unwinder and the site cache must get right.
# Sites of records (large blocks) are unwound every time: a wrapper reached from two callers at the
# same stack depth gives two sites, in every mode.
t_wrapper_sites_kept_apart() {
	run_both wrap $T/wrapper_sites || return 1
	report wrap || return 1
	$Q "$WORK/wrap.json" \
		'[s["allocations"] for s in proc(r)["sites"] if len(s["frames"]) > 1 and s["frames"][0]["function"] == "xmalloc" and s["frames"][1]["function"] == "site_one"] == [3]' \
		'[s["bytes_allocated"] for s in proc(r)["sites"] if len(s["frames"]) > 1 and s["frames"][0]["function"] == "xmalloc" and s["frames"][1]["function"] == "site_two"] == [3 * (2 << 20)]'
}


# The same wrapper for small blocks (counted at their site, no record each): the key the two callers
# share is found shared at a check (every 4,096 hits) and from then on qualified by the wrapper's
# caller.  Both sites are reported, with every block counted; each is off by at most the blocks
# before that check.
t_wrapper_small_sites_kept_apart() {
	local n=50000
	run_both wsmall $T/wrapper_sites small $n || return 1
	report wsmall || return 1
	$Q "$WORK/wsmall.json" \
		"sum(s['allocations'] for s in sites(proc(r), 'xmalloc')) == 2 * $n" \
		"sorted(s['frames'][1]['function'] for s in sites(proc(r), 'xmalloc') if len(s['frames']) > 1) == ['small_one', 'small_two']" \
		"all(abs(s['allocations'] - $n) <= 4096 for s in sites(proc(r), 'xmalloc'))"
}

# The same through two more callers the paths share (deep_one and deep_two -> mid_b -> mid_a ->
# xmalloc), the caller drawn for each block: the key is qualified three callers deep, those callers
# read from the stack where the first unwinds found them.  Both sites are reported, every block
# counted.  Until a level's check (every 4,096 hits) meets the other caller, about half of its hits
# go to the first one: three levels, each site off by about 6,000 at most (4,091 here; with the
# callers read wrong, the key deepens to its limit and they are 12,230 off).
t_wrapper_deep_sites_kept_apart() {
	local n=50000 one two
	run_both wdeep $T/wrapper_sites deep $n || return 1
	read -r _ one _ two <"$WORK/wdeep.out" || return 1
	report wdeep || return 1
	$Q "$WORK/wdeep.json" \
		"sum(s['allocations'] for s in sites(proc(r), 'xmalloc')) == 2 * $n" \
		"{s['frames'][3]['function']: s['allocations'] for s in sites(proc(r), 'xmalloc') if len(s['frames']) > 3}.keys() == {'deep_one', 'deep_two'}" \
		"all(abs(s['allocations'] - {'deep_one': $one, 'deep_two': $two}[s['frames'][3]['function']]) <= 2 * 4096 for s in sites(proc(r), 'xmalloc'))"
}

# More sites than the first size of the thread's site table (1,024 keys), visited in rounds: site k
# (one call instruction in alloc_at) allocates k + 1 blocks of 16 + k % 64 bytes, so every count
# from 1 to 3,000 appears once, each with its own size.  A count the table lost or gave to another
# site shows as a missing or a doubled number.
t_many_sites_counted_exactly() {
	local n=3000
	run_both many $T/many_sites $n triangle || return 1
	report many || return 1
	$Q "$WORK/many.json" \
		"sorted(s['allocations'] for s in sites(proc(r), 'alloc_at')) == list(range(1, $n + 1))" \
		"all(s['bytes_allocated'] == s['allocations'] * (16 + (s['allocations'] - 1) % 64) for s in sites(proc(r), 'alloc_at'))"
}

# A forked child meets the sites its parent knew (500: the parent's table has grown past the
# built-in one, and the child reads it instead of unwinding again): every allocation of the child
# is charged to its site and counted in the child, none in the parent.
t_forked_child_sites_counted() {
	local n=500
	run_both forksites $T/many_sites $n fork || return 1
	grep -qx 'child ended' "$WORK/forksites.out" || { cat "$WORK/forksites.out"; return 1; }
	report forksites || return 1
	local parent="[p for p in r['processes'] if not any(q['pid'] == p['ppid'] for q in r['processes'])][0]"
	local child="[p for p in r['processes'] if p['ppid'] == $parent['pid']][0]"
	$Q "$WORK/forksites.json" "len(r['processes']) == 2" \
		"sorted(s['allocations'] for s in sites($parent, 'alloc_at')) == [1] * $n" \
		"sorted(s['allocations'] for s in sites($child, 'alloc_at')) == list(range(1, $n + 1))"
}

# Forked children reach one wrapper from two callers at the same depth, taking turns (the parent
# never does): the same cache key in every child, two sites.  A child takes the frames a sibling
# unwound for a key only when its stack holds the sibling's whole chain of return addresses
# (forkshare.c): each child's block is charged to its own caller.
t_forked_siblings_wrapper_sites_kept_apart() {
	local n=6
	run_both forkwrap $T/fork_wrapper $n || return 1
	report forkwrap || return 1
	local parent="[p for p in r['processes'] if not any(q['pid'] == p['ppid'] for q in r['processes'])][0]"
	local kids="sorted((p for p in r['processes'] if p['ppid'] == $parent['pid']), key=lambda p: p['start_ns'] if 'start_ns' in p else p['pid'])"
	local callers="[[s['frames'][1]['function'] for s in sites(p, 'wrapped_alloc') if len(s['frames']) > 1] for p in $kids]"
	$Q "$WORK/forkwrap.json" "len($kids) == $n" \
		"$callers == [['caller_a'], ['caller_b']] * ($n // 2)" || return 1
	# The paths part at the wrapper's third caller (deep_a or deep_b -> mid_two -> mid_one): the
	# child's whole chain must be the sibling's before it takes the sibling's frames.
	run_both forkdeep $T/fork_wrapper $n deep || return 1
	report forkdeep || return 1
	local deep="[[s['frames'][3]['function'] for s in sites(p, 'wrapped_alloc') if len(s['frames']) > 3] for p in $kids]"
	$Q "$WORK/forkdeep.json" "len($kids) == $n" \
		"$deep == [['deep_a'], ['deep_b']] * ($n // 2)" || return 1
	# Blocks of their own (64 KiB): a record's site is unwound, or taken from a sibling whose whole
	# chain this child's stack holds; the parent's block through the wrapper is its own caller's.
	run_both forkbig $T/fork_wrapper $n big || return 1
	report forkbig || return 1
	local made="[[s['frames'][1]['function'] for s in sites(p, 'wrapped_alloc') if len(s['frames']) > 1 and s['allocations']] for p in [$parent] + $kids]"
	$Q "$WORK/forkbig.json" "len($kids) == $n" "$made == [['big_parent']] + [['big_a'], ['big_b']] * ($n // 2)"
}

# The program's signal mask under the shim: the shim blocks the signals while it unwinds a new call
# site and answers libunwind's own mask calls itself meanwhile; the program sets, reads and
# unblocks its mask as without the shim (run_both compares what it printed: SIGUSR1 blocked and
# pending through 3,000 first-seen sites, delivered once when unblocked), every site counted.
# glibc's signal installs a handler by a sigaction of its own: the shim's hooks of signal,
# sysv_signal and sigset report the default the program left (not the shim's last-pass handler)
# and note that the program has handlers (unwinds then block signals).
t_signal_family_reports_the_programs_disposition() {
	run_both sigprev $T/signal_prev || return 1
	grep -qx 'handlers ran: 3' "$WORK/sigprev.out" || { cat "$WORK/sigprev.out"; return 1; }
	report sigprev
}

t_sites_signal_mask_kept() {
	local n=3000
	run_both mask $T/many_sites $n signals || return 1
	grep -qx 'blocked 1, was blocked before 0, pending 1, delivered 0' "$WORK/mask.out" ||
		{ echo "  the program saw:"; cat "$WORK/mask.out"; return 1; }
	grep -qx 'after unblocking: delivered 1' "$WORK/mask.out" || { cat "$WORK/mask.out"; return 1; }
	report mask || return 1
	$Q "$WORK/mask.json" "len(sites(proc(r), 'alloc_at')) == $n"
}
