#!/bin/bash
# make bench: each workload natively and under the shim, alternating runs,
# medians, and the ratio.  Timing goals live here, never in the tests.
set -eu
BUILD=${1:-build}
LIB=$(cd "$BUILD" && pwd)/libpfshim.so
RUNS=${PFS_BENCH_RUNS:-5}
W=$(mktemp -d /tmp/pfshim-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
cc -O2 -g -o "$W/malloc_heavy" bench/malloc_heavy.c
cc -O2 -g -o "$W/touch_storm" bench/touch_storm.c
cc -O2 -g -o "$W/fork_cow" bench/fork_cow.c

# secs CMD...: wall seconds of one run
secs() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s%N)
	echo "scale=4; ($t1 - $t0) / 1000000000" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench NAME CMD...: native and shim runs alternating ($MODE: the shim's mode, default its own)
bench() {
	local name=$1
	shift
	local mode=${MODE:+PFSHIM_MODE=$MODE}
	: >"$W/n" && : >"$W/s"
	for _ in $(seq "$RUNS"); do
		secs "$@" >>"$W/n"
		rm -rf "$W/logs"
		secs env $mode PFSHIM_QUIET=1 PFSHIM_OUT="$W/logs" LD_PRELOAD="$LIB" "$@" >>"$W/s"
	done
	local n s
	n=$(median <"$W/n")
	s=$(median <"$W/s")
	printf '%-44s native %6.3f s   shim %6.3f s   ratio %5.2fx\n' "$name" "$n" "$s" "$(echo "scale=4; $s / $n" | bc)"
}

echo "pfshim benchmarks: $(nproc) cores, $RUNS runs each, medians"
MODE=off bench "20M malloc/free pairs, 16-216 B, mode off" "$W/malloc_heavy" 20000000
MODE=fast bench "20M malloc/free pairs, 16-216 B, mode fast" "$W/malloc_heavy" 20000000
MODE=fast bench "touch 256 MiB fresh malloc (storm), mode fast" "$W/touch_storm" 256
MODE=fast bench "1 GiB touched, fork, child writes 10%, mode fast" "$W/fork_cow" 1024
bash bench/analyzer.sh "$BUILD"
