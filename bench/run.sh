#!/bin/bash
# make bench: each workload natively, under the shim and under the peer tools (perf, heaptrack),
# runs alternating, medians, and each ratio against native beside its target (issue 8); then how
# the shim's cost grows with pages, threads, allocations and processes; then where the time of the
# allocation-heavy workload goes under the shim (perf report).  Timing goals live here, never in
# the tests.  PFS_BENCH_RUNS: runs per cell (default 5), PFS_BENCH_SCALE_RUNS for the scaling tables (5).
set -eu
BUILD=${1:-build}
LIB=$(cd "$BUILD" && pwd)/libpfshim.so
CLI=$(cd "$BUILD" && pwd)/pfshim
RUNS=${PFS_BENCH_RUNS:-5}
W=$(mktemp -d /tmp/pfshim-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
for p in malloc_heavy touch_storm fork_cow touch_threads live_blocks many_sites page_cost; do
	cc -O2 -g -o "$W/$p" "bench/$p.c" -lpthread
done

. bench/lib.sh

echo "pfshim benchmarks: $(nproc) cores, $(uname -r), $RUNS runs per cell alternating, medians"
echo "what a page costs a process here (bench/page_cost.c: the unit of every start and fork):"
"$W/page_cost"
echo
bench "20M malloc/free pairs of 16-216 B, two call levels (malloc_heavy 20000000)" \
	"off fast $(peers heaptrack perf)" "fast<=2.0" "$W/malloc_heavy" 20000000
bench "touch 256 MiB of fresh malloc memory, the storm (touch_storm 256)" \
	"fast $(peers perf heaptrack)" "fast<=1.25" "$W/touch_storm" 256

# ---- the exact-mode rows (issues 8, 23): exact mode on the kernel's fault events, and on
# userfaultfd (uffd), against perf on the same storm, with the other core busy, forked children
# and threads.  uffd is measured only where it runs (root, or vm.unprivileged_userfaultfd).
mechanism() {
	rm -rf "$W/probe"
	PFSHIM_MODE=$1 PFSHIM_QUIET=1 PFSHIM_OUT="$W/probe" LD_PRELOAD="$LIB" "$W/touch_storm" 4 >/dev/null 2>"$W/probe.err" || true
	"$CLI" report --format json "$W/probe" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["processes"][0]["mechanism"])' 2>/dev/null || echo unknown
}
exact_mech=$(mechanism exact)
uffd=$([ "$(mechanism uffd)" = userfaultfd ] && echo uffd)
echo "exact mode here: $exact_mech; userfaultfd: ${uffd:-not available}"
yes >/dev/null &
busy=$!
bench "the storm with the other core busy (touch_storm 256, yes >/dev/null beside it)" \
	"fast exact $uffd $(peers perf)" "exact<=1.3 exact<perf" "$W/touch_storm" 256
kill $busy
bench "100 forked children, 64 MiB each, 10% written (fork_cow 64 100)" "fast exact $uffd" "exact<=2.5" "$W/fork_cow" 64 100
bench "8 threads allocating and touching (touch_threads)" "fast exact $uffd" "" "$W/touch_threads"
rm -rf "$W/probe"
PFSHIM_MODE=exact PFSHIM_QUIET=1 PFSHIM_OUT="$W/probe" LD_PRELOAD="$LIB" "$W/touch_storm" 4 >/dev/null 2>"$W/probe.err" || true
mode=$("$CLI" report --format json "$W/probe" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["mode"])' 2>/dev/null || echo unknown)
if [ "$mode" = exact ]; then
	bench "the same storm, exact mode (touch_storm 256)" "exact $uffd $(peers perf)" "exact<perf" "$W/touch_storm" 256
	# Log size per fault event in exact mode (target: at most 16 B on average).
	clean
	run exact "$W/touch_storm" 256 >/dev/null 2>&1
	bytes=$(cat "$W"/logs/*.pfslog | wc -c)
	faults=$("$CLI" report --format json "$W/logs" | python3 -c 'import json,sys; print(sum(p["totals"]["first_touch_faults"] for p in json.load(sys.stdin)["processes"]))')
	printf '    log: %d bytes for %d faults: %.1f B per fault event (target at most 16, the whole log counted)\n' \
		"$bytes" "$faults" "$(echo "scale=2; $bytes / $faults" | bc)"
else
	echo "the same storm, exact mode: skipped, PFSHIM_MODE=exact ran in mode '$mode' here: $(head -1 "$W/probe.err")"
fi

PHASE=1 bench "1 GiB touched, fork, the child writes 10% (fork_cow 1024): fork plus the child's writes" \
	"fast $(peers perf heaptrack)" "fast<=1.2" "$W/fork_cow" 1024

# ---- process starts (issue 21: target at most 2 ms per process over native) ----
# starts_print TITLE NPROC [VARIANTS]: the native row and those of VARIANTS (default: off fast) of
# $W/t.*; the cost per process is the difference of the cpu medians / NPROC (cpu: the wall time of
# short processes on a loaded machine is mostly waiting).
starts_print() {
	local v n nc m mc
	n=$(median <"$W/t.native")
	nc=$(median 2 <"$W/t.native")
	printf 'process starts: %s\n    %-10s %8.3f s %16s cpu %7.3f s\n' "$1" native "$n" "" "$nc"
	for v in ${3:-off fast}; do
		m=$(median <"$W/t.$v")
		mc=$(median 2 <"$W/t.$v")
		printf '    %-10s %8.3f s  %6.2fx native   cpu %7.3f s  %6.2fx   %5.2f ms cpu per process over native (target at most 2)\n' \
			"$v" "$m" "$(ratio "$m" "$n")" "$mc" "$(ratio "$mc" "$nc")" "$(echo "scale=3; ($mc - $nc) * 1000 / $2" | bc)"
	done
}

# 100 runs of /bin/true, then of sh -c true, started by a shell loop that itself runs untraced
# (only the children get the shim).
for cmd in /bin/true "sh -c true"; do
	loop="i=0; while [ \$i -lt 100 ]; do LD_PRELOAD=\$PFS_CHILD_LIB $cmd; i=\$((i + 1)); done"
	for v in native off fast; do : >"$W/t.$v"; done
	for _ in $(seq "$RUNS"); do
		for v in native off fast; do
			lib=$LIB
			[ $v = native ] && lib=
			PFS_CHILD_LIB=$lib PFSHIM_MODE=$v PFSHIM_QUIET=1 PFSHIM_OUT="$W/logs" secs native sh -c "$loop" >>"$W/t.$v"
		done
	done
	starts_print "100 runs of $cmd from a shell loop" 100
done
# The same /bin/true under a site= rule that matches nothing (policy): what testing a policy adds to
# each start (the symbol tables; the inlined functions' ranges, read by a child with libdw only where
# an object to read has DWARF, which a stripped program of the distribution has not).
loop="i=0; while [ \$i -lt 100 ]; do LD_PRELOAD=\$PFS_CHILD_LIB /bin/true; i=\$((i + 1)); done"
for v in native fast policy; do : >"$W/t.$v"; done
for _ in $(seq "$RUNS"); do
	for v in native fast policy; do
		lib=$LIB pol=
		[ $v = native ] && lib=
		[ $v = policy ] && pol='populate if site=no_such_function'
		PFS_CHILD_LIB=$lib PFSHIM_MODE=fast PFSHIM_POLICY=$pol PFSHIM_QUIET=1 PFSHIM_OUT="$W/logs" \
			secs native sh -c "$loop" >>"$W/t.$v"
	done
done
starts_print "100 runs of /bin/true under a site= rule (policy: populate if site=no_such_function)" 100 "fast policy"

# script_row TITLE NPROC SHELL SCRIPT: the script run by SHELL, the shell and every command under the
# shim, as `pfshim record SHELL SCRIPT` runs it.
script_row() {
	local title=$1 nproc=$2 v
	shift 2
	for v in native off fast; do : >"$W/t.$v"; done
	for _ in $(seq "$RUNS"); do
		for v in native off fast; do secs "$v" "$@" >>"$W/t.$v"; done
	done
	starts_print "$title" "$nproc"
}

# 200 short commands (/bin/true, /bin/echo, expr, cat; 50 of each): dash starts each with vfork.
for i in $(seq 50); do
	printf '/bin/true\n/bin/echo line %d\nexpr %d + 1\ncat /dev/null\n' "$i" "$i"
done >"$W/short.sh"
script_row "a shell script of 200 short commands, all under the shim (201 processes)" 201 sh "$W/short.sh"
# The same 200 commands run by bash, which forks each: the forked child is traced until its exec
# (its own log, its regions protected for copy-on-write) and the parent's memory is protected again.
script_row "the same script run by bash, which forks each command (201 processes)" 201 bash "$W/short.sh"
# Forked children that do not exec: 200 subshells and command substitutions (bash forks each and the
# child runs the builtins itself), the child traced to its end (its log, its copies, its sites:
# code its parent never ran, whose frames the siblings share, forkshare.c).
for i in $(seq 100); do
	printf '( : )\nx=$(echo %d)\n' "$i"
done >"$W/subshells.sh"
script_row "200 subshells and command substitutions run by bash (201 processes)" 201 bash "$W/subshells.sh"

# ---- the analyzer on a real log of 10 million allocation events (target: under 2 s, under 1 GiB) ----
# 5 million malloc/free pairs of 4-4.2 KiB: each block is logged (an ALLOC and a FREE record).
# bench/analyzer.sh, at the end, does the same for 10 million fault events (a synthetic log).
rm -rf "$W/big"
PFSHIM_QUIET=1 PFSHIM_OUT="$W/big" LD_PRELOAD="$LIB" "$W/malloc_heavy" 5000000 4096 >/dev/null
echo "the analyzer on a log of 10 million allocation events ($(du -m "$W"/big/*.pfslog | awk '{s += $1} END {print s}') MiB: 5 M allocations and 5 M frees)"
for fmt in text json; do
	[ -x /usr/bin/time ] || { echo "    skipped: no /usr/bin/time (Debian package time)"; break; }
	: >"$W/t.an" && : >"$W/m.an"
	for _ in $(seq "$RUNS"); do
		/usr/bin/time -f '%e %M' -o "$W/time" "$CLI" report --format $fmt "$W/big" >/dev/null
		awk '{print $1}' "$W/time" >>"$W/t.an"
		awk '{print $2}' "$W/time" >>"$W/m.an"
	done
	s=$(median <"$W/t.an")
	m=$(median <"$W/m.an")
	printf '    report --format %-5s %6.2f s, max RSS %5d MiB   target under 2 s: %s, under 1024 MiB: %s\n' \
		$fmt "$s" $((m / 1024)) "$([ "$(echo "$s < 2" | bc)" = 1 ] && echo met || echo MISSED)" \
		"$([ $((m / 1024)) -lt 1024 ] && echo met || echo MISSED)"
done
rm -rf "$W/big"

# ---- scaling: the shim's cost (fast mode) as each dimension grows; 5 runs per cell ----
RUNS=${PFS_BENCH_SCALE_RUNS:-5}
# scale TITLE UNIT SIZES CMD-WITH-@: one table row per size, @ replaced by the size.
scale() {
	local title=$1 unit=$2 sizes=$3 s
	shift 3
	echo
	echo "scaling: $title (fast mode, medians of $RUNS)"
	printf '    %-10s %10s %10s %7s %12s %10s %7s\n' "$unit" native fast ratio "native cpu" "fast cpu" ratio
	for s in $sizes; do
		local cmd=() a
		for a in "$@"; do cmd+=("${a//@/$s}"); done
		for v in native fast; do : >"$W/t.$v"; done
		for _ in $(seq "$RUNS"); do
			for v in native fast; do secs "$v" "${cmd[@]}" >>"$W/t.$v"; done
		done
		local n f nc fc
		n=$(median <"$W/t.native")
		f=$(median <"$W/t.fast")
		nc=$(median 2 <"$W/t.native")
		fc=$(median 2 <"$W/t.fast")
		printf '    %-10s %8.3f s %8.3f s %6.2fx %10.3f s %8.3f s %6.2fx\n' "$s" "$n" "$f" "$(ratio "$f" "$n")" \
			"$nc" "$fc" "$(ratio "$fc" "$nc")"
	done
}
scale "pages: touch_storm MiB" "MiB" "64 256 1024" "$W/touch_storm" @
scale "threads: touch_threads, 64 MiB per thread" "threads" "1 2 4" "$W/touch_threads" 64 @
scale "allocations: malloc_heavy pairs" "pairs" "1000000 5000000 20000000" "$W/malloc_heavy" @
scale "live mappings: live_blocks, 256 KiB each, one page touched" "blocks" "1000 4000 12000" "$W/live_blocks" @
scale "call sites: many_sites, 2 M malloc/free pairs round-robin over the sites" "sites" "100 1000 10000" \
	"$W/many_sites" @
PHASE=1 scale "processes: fork_cow 256 MiB, children writing 10% each (fork plus writes)" "children" "1 2 4" \
	"$W/fork_cow" 256 @

# ---- where the time goes: the allocation-heavy workload under the shim ----
if [ -n "$(peers perf)" ]; then
	echo
	echo "profile: malloc_heavy 20000000 under the shim (fast mode), perf record -g, top symbols by self time"
	perf record -q -g -o "$W/prof.data" -- env PFSHIM_MODE=fast PFSHIM_QUIET=1 PFSHIM_OUT="$W/logs" \
		LD_PRELOAD="$LIB" "$W/malloc_heavy" 20000000 >/dev/null 2>&1
	perf report -q -i "$W/prof.data" --stdio --no-children --sort dso,sym -g none 2>/dev/null | grep -v '^$' | head -12 | sed 's/^/    /'
fi

# The analyzer on a synthetic log of 10 million fault events (bench/analyzer.sh, issue 5).
echo
bash bench/analyzer.sh "$BUILD"
