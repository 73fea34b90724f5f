#!/bin/bash
# make bench: `pfshim report` on a synthetic fast-mode log of 10 million
# fault events (tools/genlog.c: TOUCH records of one page each over 1000
# sites and 10 s, with ALLOC, STACK, MODULE and SCAN records and one storm).
# Wall time, CPU time and peak RSS, medians of PFS_BENCH_RUNS runs after one
# to warm the page cache.  Targets (issue 5): under 2 s and under 1 GiB.
set -eu
BUILD=${1:-build}
CLI=$(cd "$BUILD" && pwd)/pfshim
RUNS=${PFS_BENCH_RUNS:-5}
EVENTS=${PFS_BENCH_EVENTS:-10000000}
W=$(mktemp -d /tmp/pfshim-bench-an.XXXXXX)
trap 'rm -rf "$W"' EXIT
cc -O2 -g -std=gnu11 -Wall -Wextra -Iinclude -o "$W/genlog" tools/genlog.c
"$W/genlog" "$W/run.pfslog" "$EVENTS"
size=$(stat -c %s "$W/run.pfslog")
# the same with a time of its own per event, as exact mode's per-fault events will have
"$W/genlog" "$W/distinct.pfslog" "$EVENTS" 1000 100000 distinct

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench NAME FORMAT [LOG]: pfshim report --format FORMAT of the log, $RUNS times; the targets
# (issue 5) said for the log of $EVENTS fault events (a storm over the whole run: 7fc793b's
# copies of its records took it to 6 s and 1.25 GB, and nothing here said so)
bench() {
	local name=$1 fmt=$2 log=${3:-$W/run.pfslog}
	"$CLI" report --format "$fmt" "$log" >/dev/null
	: >"$W/times"
	for _ in $(seq "$RUNS"); do
		/usr/bin/time -f '%e %U %S %M' -o "$W/t" "$CLI" report --format "$fmt" "$log" >/dev/null
		cat "$W/t" >>"$W/times"
	done
	local wall user sys rss
	wall=$(awk '{print $1}' "$W/times" | median)
	user=$(awk '{print $2}' "$W/times" | median)
	sys=$(awk '{print $3}' "$W/times" | median)
	rss=$(awk '{print $4}' "$W/times" | median)
	printf '%-44s wall %6.2f s   cpu %5.2f s user + %4.2f s sys   peak RSS %5d MiB\n' \
		"$name" "$wall" "$user" "$sys" $((rss / 1024))
	[ $# -ge 3 ] || printf '    target under 2 s: %s, under 1024 MiB: %s\n' \
		"$(awk -v w="$wall" 'BEGIN { print (w < 2 ? "met" : "MISSED") }')" \
		"$([ $((rss / 1024)) -lt 1024 ] && echo met || echo MISSED)"
}

echo "pfshim analyzer: $(nproc) cores, $RUNS runs each, medians; log of $EVENTS fault events, $((size >> 20)) MiB"
bench "report (text) of $EVENTS fault events" text
bench "report --format json of $EVENTS fault events" json
bench "report (text), every event its own time" text "$W/distinct.pfslog"
