# The functions `make bench`'s scripts share (bench/run.sh, bench/real.sh): running one variant
# of a command, timing it, medians, the alternating table rows.  Sourced after BUILD, LIB, CLI,
# RUNS and W are set.

# The peers come from Debian (linux-perf, heaptrack), and time(1) measures the analyzer: installed
# when missing and root, else their rows are skipped.
PEERS=""
for pkg in perf:linux-perf heaptrack:heaptrack /usr/bin/time:time; do
	tool=${pkg%%:*}
	if ! command -v "$tool" >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing ${pkg#*:} for the benchmark"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${pkg#*:}" >/dev/null 2>&1 || true
	fi
	if command -v "$tool" >/dev/null; then
		PEERS="$PEERS $tool"
	else
		echo "$tool: not installed (Debian package ${pkg#*:}): its rows are skipped"
	fi
done

# clean: the files of the last run gone (perf.data, heaptrack's), before a run's clock starts:
# deleting a run's 200 logs took about 0.1 s of cpu here (ext4), charged to whichever variant ran
# next.  The logs are set aside, deleted at the end (with $W): on ext4 without a journal (this
# kind of machine's /tmp) each file created within seconds of many deletions searches past the
# deleted inodes (recently_deleted), about 0.4 ms a log, which a run of pfshim does not meet
# unless it follows the deletion of another's logs (docs/performance.md, eleventh pass).
clean() {
	if [ -e "$W/logs" ]; then
		mkdir -p "$W/gone"
		mv "$W/logs" "$(mktemp -d "$W/gone/logs.XXXXXX")/"
	fi
	rm -rf "$W/perf.data" "$W"/ht.*
}

# run VARIANT CMD...: one run of CMD as VARIANT: native, off/fast/exact/uffd (the shim in that mode),
# perf (page-fault samples with call graphs, every fault), heaptrack.
run() {
	local v=$1
	shift
	case $v in
	native) "$@" ;;
	off | fast | exact | uffd) env PFSHIM_MODE=$v PFSHIM_QUIET=1 PFSHIM_OUT="$W/logs" LD_PRELOAD="$LIB" "$@" ;;
	perf) perf record -e page-faults -c 1 -g -q -o "$W/perf.data" -- "$@" ;;
	heaptrack) heaptrack -o "$W/ht" "$@" ;;
	esac
}

# secs VARIANT CMD...: "WALL CPU" seconds of one run: wall clock, and the user plus system time
# of the run's processes (the shim's threads, the children, the peer tool included: less
# disturbed than wall time by other work on a shared machine).  With PHASE set, WALL is the
# "phase S" line the program prints on stderr (the part of the run the target is about).
secs() {
	local t0 t1 cpu
	clean
	t0=$(date +%s%N)
	cpu=$( { run "$@" >/dev/null 2>"$W/err" || { echo "run failed: $*" >&2; cat "$W/err" >&2; }; times; } |
		tail -1 | awk '{ for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } } END { print t }')
	t1=$(date +%s%N)
	if [ -n "${PHASE:-}" ]; then
		echo "$(awk '$1 == "phase" {print $2}' "$W/err" | tail -1) $cpu"
	else
		echo "$(echo "scale=4; ($t1 - $t0) / 1000000000" | bc) $cpu"
	fi
}

# median [COLUMN]: the median of a column (default 1) of the numbers on stdin
median() { awk -v c="${1:-1}" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { echo "scale=4; $1 / $2" | bc; }

# bench LABEL "VARIANTS" "CHECKS" CMD...: RUNS rounds, each variant once per round (alternating);
# prints the medians and each variant's ratio to native.  CHECKS: "VARIANT<=X" (a ratio target)
# or "VARIANT<PEER" (cheaper than the peer), each printed as met or missed.
bench() {
	local label=$1 variants=$2 checks=$3 v
	shift 3
	for v in native $variants; do : >"$W/t.$v"; done
	for _ in $(seq "$RUNS"); do
		for v in native $variants; do secs "$v" "$@" >>"$W/t.$v"; done
	done
	local n nc
	n=$(median <"$W/t.native")
	nc=$(median 2 <"$W/t.native")
	printf '%s\n    %-10s %8.3f s %16s cpu %7.3f s\n' "$label" native "$n" "" "$nc"
	for v in $variants; do
		local m mc
		m=$(median <"$W/t.$v")
		mc=$(median 2 <"$W/t.$v")
		echo "$m" >"$W/m.$v"
		printf '    %-10s %8.3f s  %6.2fx native   cpu %7.3f s  %6.2fx\n' "$v" "$m" "$(ratio "$m" "$n")" "$mc" "$(ratio "$mc" "$nc")"
	done
	local c
	for c in $checks; do
		local left=${c%%<*} right=${c#*<} verdict
		if [ "${right#=}" != "$right" ]; then
			right=${right#=}
			verdict=$(echo "$(ratio "$(cat "$W/m.$left")" "$n") <= $right" | bc)
			printf '    target: %s at most %sx native: %s\n' "$left" "$right" "$([ "$verdict" = 1 ] && echo met || echo MISSED)"
		elif [ -e "$W/m.$right" ]; then
			verdict=$(echo "$(cat "$W/m.$left") < $(cat "$W/m.$right")" | bc)
			printf '    target: %s cheaper than %s: %s\n' "$left" "$right" "$([ "$verdict" = 1 ] && echo met || echo MISSED)"
		fi
	done
}

# peers NAME...: those of the named peers that are installed
peers() {
	local p out=""
	for p in "$@"; do case " $PEERS " in *" $p "*) out="$out $p" ;; esac; done
	echo "$out"
}

