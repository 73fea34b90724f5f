#!/bin/bash
# make bench-real: issue 21's table, real programs and growing workloads, each run natively, under
# the shim (off, fast, exact on fault events, exact on userfaultfd: uffd) and under the peers (heaptrack, perf -c 1 -g) in alternating rounds,
# medians, wall and cpu ratios against native.  PFS_BENCH_RUNS: rounds (default 3 here: a round of
# every variant takes about a minute).  Timing goals live here and in docs/performance.md, never in
# the tests.  usage: bench/real.sh BUILD [WORKLOAD...] (default: all of them)
set -eu
BUILD=${1:-build}
shift || true
LIB=$(cd "$BUILD" && pwd)/libpfshim.so
CLI=$(cd "$BUILD" && pwd)/pfshim
RUNS=${PFS_BENCH_RUNS:-3}
W=$(mktemp -d /tmp/pfshim-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
ROOT=$(pwd)
. bench/lib.sh

for p in fork_cow touch_threads; do
	cc -O2 -g -o "$W/$p" "bench/$p.c" -lpthread
done
# A C program whose C++ library throws (cxx): the unwinder its exceptions get under each tool
# (the test's program and library: tests/preload/cxx_from_c.c, lib/cxxthrow.cpp).
if command -v g++ >/dev/null; then
	g++ -O2 -g -fPIC -shared -o "$W/libcxxthrow.so" tests/preload/lib/cxxthrow.cpp &&
		cc -O2 -g -o "$W/cxx_from_c" tests/preload/cxx_from_c.c -L"$W" -lcxxthrow -Wl,-rpath,"$W"
fi
# The interpreter itself, not a version manager's shim on PATH (those start a shell each run).
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

# The inputs: the gauntlet's own (tools/fidelity.py: the SQL, the generated C), written once there.
cat >"$W/pool.py" <<'EOF'
import multiprocessing as mp
d = {i: str(i) for i in range(2_000_000)}
def work(x):
    return sum(len(d[k]) for k in range(x * 50_000, (x + 1) * 50_000))
if __name__ == "__main__":
    with mp.get_context("fork").Pool(3) as pool:
        print(sum(pool.map(work, range(30))))
EOF
$PY - "$W" <<'EOF'
import sys
sys.path.insert(0, "tools")
import fidelity
w = sys.argv[1]
open(w + "/rows.sql", "w").write(fidelity.SQL)
open(w + "/big.c", "w").write(fidelity.c_source(340))
EOF

ALL="python sqlite gcc git threads fork cxx"
VARIANTS="off fast exact uffd $(peers heaptrack perf)"
echo "pfshim on real programs (issue 21): $(nproc) cores, $(uname -r), $RUNS rounds alternating, medians, load $(cut -d' ' -f1-3 /proc/loadavg)"
for w in ${*:-$ALL}; do
	echo
	case $w in
	python) bench "python3: a 2M-element dict, multiprocessing.Pool(3) forked over it" "$VARIANTS" "" $PY "$W/pool.py" ;;
	sqlite)
		command -v sqlite3 >/dev/null || { echo "sqlite: skipped, no sqlite3 (Debian package sqlite3)"; continue; }
		bench "sqlite3: 200,000 rows in memory, an index, two scans" "$VARIANTS" "" sh -c "sqlite3 :memory: <$W/rows.sql" ;;
	gcc) bench "gcc -O2 -c, a generated $(wc -l <"$W/big.c")-line C file" "$VARIANTS" "fast<=1.15" \
		gcc -O2 -c -o "$W/big.o" "$W/big.c" ;;
	git) bench "git log -p of this repository ($(git -C "$ROOT" rev-list --count HEAD) commits)" "$VARIANTS" "" \
		git -C "$ROOT" log -p ;;
	threads) bench "8 threads each touching 64 MiB of their own (touch_threads 64 8)" "$VARIANTS" "" \
		"$W/touch_threads" 64 8 ;;
	fork) PHASE=1 bench "100 forked children of a 64 MiB process, each writing 10% (fork_cow 64 100): fork plus writes" \
		"$VARIANTS" "exact<=2.5" "$W/fork_cow" 64 100 ;;
	cxx)
		[ -x "$W/cxx_from_c" ] || { echo "cxx: skipped, no g++ (Debian package g++)"; continue; }
		bench "a C program's C++ library throwing 200,000 exceptions (tests/preload/cxx_from_c.c)" "$VARIANTS" \
			"fast<=1.2" "$W/cxx_from_c" 200000 ;;
	*) echo "unknown workload $w (one of: $ALL)" >&2 && exit 2 ;;
	esac
done
