#!/bin/bash
# Integration tests: real programs and small target programs under the shim.  Each test
# compares the program's output and exit status with a plain run, then checks what
# `pfshim report` says.  The tests are the t_* functions of tests/integration/*.sh.
#
# usage: tests/run-integration.sh       (BUILD=build by default)
#   PFS_TESTS="name ..."  only these tests (with or without the t_ prefix)
#   PFS_JOBS=N            tests at once (default: one more than the cores)
#   PFS_SUMMARY=FILE      also write the totals and the skips there (make check's summary)
#   PFS_VERBOSE=1         every test's output, not only a failed one's
#   PFS_SOAK=1            the long stress tests at their full counts (`make fuzz`); `make check`
#                         runs a sample of each (soak CHECK FULL)
#
# Tests run in parallel, each in a bash of its own with its own work directory ($WORK);
# a program's native run is made once per run of the suite and reused (native_ref).  One
# line per test, with its wall and CPU seconds; a failure shows the test's output.  A test
# passes (status 0), fails, or skips (`skip REASON`: the reason is printed and counted).  Ends
# with the CPU-seconds of all the tests, then "integration: N passed, M failed, K skipped".
set -u
if [ "${1:-}" = --one ]; then
	# a test's own bash (below): the runner's paths, not found again (a process costs ~8 ms here)
	ROOT=$PFS_ROOT BUILD=$PFS_BUILD
else
	BUILD=${BUILD:-build}
	ROOT=$(cd "$(dirname "$0")/.." && pwd)
	BUILD=$(cd "$ROOT/$BUILD" 2>/dev/null && pwd || echo "$BUILD")
fi
LIB=$BUILD/libpfshim.so
CLI=$BUILD/pfshim
T=$BUILD/tests/preload
# Debian's python3 (make check installs it), not whatever python3 comes first in PATH: a version
# manager's shim costs more than the check it runs.
PY=/usr/bin/python3
# $Q REPORT EXPR...: tests/lib/jsonq.py's checks of a JSON report.  The runner starts one jsonq
# server for the suite (jsonq.py --serve): a check is asked of it through bash's /dev/tcp, with the
# token only the suite's user can read; no process a check (a Python start costs ~70 ms of CPU
# here).  A test's bash started without the runner's server runs jsonq.py itself.
jsonq() {
	if [ -z "${PFS_JSONQ_PORT:-}" ]; then
		"$PY" "$ROOT/tests/lib/jsonq.py" "$@"
		return
	fi
	local fd tok rc="" out="" err=""
	read -r tok <"$PFS_BASE/q/token" && exec {fd}<>"/dev/tcp/127.0.0.1/$PFS_JSONQ_PORT" ||
		{ echo "  the suite's jsonq server does not answer"; return 1; }
	printf '%s\0' "$tok" "$PWD" $# "$@" >&$fd
	IFS= read -r -d '' rc <&$fd
	IFS= read -r -d '' out <&$fd
	IFS= read -r -d '' err <&$fd
	exec {fd}>&-
	printf '%s' "$out"
	printf '%s' "$err" >&2
	[ -n "$rc" ] || { echo "  the suite's jsonq server gave no answer"; return 1; }
	return "$rc"
}
Q=jsonq
SKIP_STATUS=77
# program_count WHAT NAME [WORD...]: the count a test program printed on stderr under the shim as
# "WHAT [WORD...] N", from $WORK/NAME.err; fails when missing.
program_count() {
	local what=$1 name=$2
	shift 2
	awk -v want="$what${*:+ $*}" '{ n = $NF; $NF = ""; sub(/ +$/, "") } $0 == want {print n; exit}' "$WORK/$name.err" | grep . ||
		{ echo "  the program's $what count is missing" >&2; return 1; }
}

# program_faults NAME [WORD...]: its "faults [WORD...] N" (the kernel's own, from getrusage).
program_faults() {
	program_count faults "$@"
}

# soak CHECK FULL: how many rounds a stress test makes: CHECK in `make check`, FULL with PFS_SOAK=1.
soak() {
	[ "${PFS_SOAK:-0}" = 1 ] && echo "$2" || echo "$1"
}

# Per-test limit: a test that hangs is killed and fails.
TEST_LIMIT=${PFS_TEST_LIMIT:-300}

# skip REASON: this test does not apply here; says why and ends the test.
skip() {
	echo "SKIP: $*"
	exit $SKIP_STATUS
}

# needs_root TEST...: these tests need root (to become another user, mount, make a setuid file);
# without it they skip.  Every test with "exact" in its name needs exact mode: root or access to
# /dev/userfaultfd (README).
needs_root() {
	ROOT_TESTS="${ROOT_TESTS:-} $*"
}

# need CMD PACKAGE: CMD must be there (make check installs PACKAGE, tools/deps.sh); a failure if not.
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "  $1 is missing: \`make check\` installs it (Debian package $2, tools/deps.sh test)"
	exit 1
}

# shared_input NAME CMD...: the path of a file made once per suite run by CMD (its stdout,
# stdin passed on), the same for every test: programs given it keep one native run.
shared_input() {
	local name=$1 f=$BASE/inputs/$1
	shift
	[ -e "$f" ] || (
		flock 9
		[ -e "$f" ] || { "$@" >"$f.tmp" && mv "$f.tmp" "$f"; }
	) 9>"$BASE/inputs/$name.lock"
	echo "$f"
}

# native_key CMD...: a file name for one command line, in NATIVE_KEY: its words (%q) with "%" and "/"
# escaped; a long one by its SHA-1.  (bash's own: no process for the common case)
native_key() {
	local k
	printf -v k '%q ' "$@"
	k=${k//%/%25}
	NATIVE_KEY=${k//\//%2F}
	[ ${#NATIVE_KEY} -le 200 ] || NATIVE_KEY=$(printf '%s\0' "$@" | sha1sum | cut -c1-40)
}

# native_ref NAME CMD...: CMD's plain run, made once per suite run for one command line (in the
# work directory of the first test that asks): its output copied to $WORK/NAME.native, its exit
# status in NATIVE_RC.
native_ref() {
	local name=$1 c
	shift
	native_key "$@"
	c=$BASE/native/$NATIVE_KEY
	# (.rc is made last, whole: once it is there, the run is kept)
	[ -e "$c.rc" ] || (
		flock 9
		if [ ! -e "$c.rc" ]; then
			(cd "$WORK" && timeout 120 "$@" >"$c.out" 2>/dev/null)
			echo $? >"$c.rc.new" && mv "$c.rc.new" "$c.rc"
		fi
	) 9>"$c.lock"
	read -r NATIVE_RC <"$c.rc" && cp "$c.out" "$WORK/$name.native"
}

# run_as_nobody DIR NAME PROG ARGS...: copies the shim and PROG into DIR (0777, so nobody can write
# its logs there) and runs PROG there as nobody with logs in DIR/NAME; its stdout in DIR/NAME.out.
run_as_nobody() {
	local d=$1 name=$2 prog=$3
	shift 3
	mkdir -p "$d" && chmod 777 "$d" && chmod 755 "$WORK"
	install -m 0755 "$LIB" "$prog" "$d/"
	(cd "$d" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env PFSHIM_OUT="$d/$name" LD_PRELOAD="$d/libpfshim.so" "./$(basename "$prog")" "$@" \
		>"$d/$name.out" 2>"$d/$name.err") || { echo "  unprivileged run failed:"; cat "$d/$name.err"; return 1; }
}

# run_both NAME CMD...: runs CMD natively (once per suite: native_ref) and under the shim (logs in
# $WORK/NAME, variables for the shim in $RUN_ENV), requires identical stdout and exit status,
# leaves the shim run's stderr in $WORK/NAME.err.
run_both() {
	local name=$1 rc
	shift
	[ ! -e "$WORK/$name" ] || rm -rf "${WORK:?}/$name"
	native_ref "$name" "$@" || return 1
	# timeout itself runs untraced; only the program gets LD_PRELOAD
	(cd "$WORK" && export ${RUN_ENV:-} PFSHIM_OUT="$WORK/$name" &&
		exec timeout 120 env LD_PRELOAD="$LIB" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err")
	rc=$?
	echo $rc >"$WORK/$name.rc"
	if ! cmp -s "$WORK/$name.native" "$WORK/$name.out"; then
		echo "  output differs under the shim:"
		diff "$WORK/$name.native" "$WORK/$name.out" | head -5
		return 1
	fi
	if [ "$rc" != "$NATIVE_RC" ]; then
		echo "  exit status $rc under the shim, $NATIVE_RC without"
		return 1
	fi
}

# run_mode MODE NAME CMD...: run_both with PFSHIM_MODE=MODE (and $RUN_ENV), then the JSON report,
# which must say that mode.
run_mode() {
	local mode=$1 name=$2
	shift 2
	RUN_ENV="PFSHIM_MODE=$mode ${RUN_ENV:-}" run_both "$name" "$@" || return 1
	report "$name" || return 1
	$Q "$WORK/$name.json" "r[\"mode\"] == \"$mode\""
}

# The parent of a fork pair is the process whose pid is another's ppid (jsonq expressions).
PARENT='[p for p in r["processes"] if p["pid"] in [q["ppid"] for q in r["processes"]]][0]'
CHILD='[p for p in r["processes"] if p["pid"] not in [q["ppid"] for q in r["processes"]]][0]'

# check_touch_cow JSON [EXPR...]: tests/preload/touch_cow's counts in a report, the same in every
# mode, and the further EXPRs: the parent touches 20 pages of cow_site and 8 of cow_malloc_site
# and forks; the child writes 7 of cow_site's pages and 4 of the malloc'd ones (copies) and 5
# fresh ones; then the parent writes 3 of its pages (copies) and 4 fresh ones.
check_touch_cow() {
	local f=$1
	shift
	$Q "$f" 'len(r["processes"]) == 2' \
		"site($PARENT, \"cow_site\")[\"first_touch_faults\"] == 24" \
		"site($PARENT, \"cow_site\")[\"cow_faults\"] == 3" \
		"site($PARENT, \"cow_malloc_site\")[\"first_touch_faults\"] == 8" \
		"site($PARENT, \"cow_malloc_site\")[\"cow_faults\"] == 0" \
		"site($CHILD, \"cow_site\")[\"first_touch_faults\"] == 5" \
		"site($CHILD, \"cow_site\")[\"cow_faults\"] == 7" \
		"site($CHILD, \"cow_malloc_site\")[\"cow_faults\"] == 4" "$@"
}

# report NAME [FORMAT]: the analyzer's report of $WORK/NAME into $WORK/NAME.FORMAT
report() {
	local fmt=${2:-json}
	"$CLI" report --format "$fmt" "$WORK/$1" >"$WORK/$1.$fmt" 2>"$WORK/$1.$fmt.err"
	local rc=$?
	if [ $rc -ne 0 ]; then
		echo "  pfshim report exited $rc:"
		head -5 "$WORK/$1.$fmt.err"
	fi
	return $rc
}

# diff_json NAME A B: `pfshim diff --format json` of $WORK/A and $WORK/B into $WORK/NAME.json
diff_json() {
	"$CLI" diff --format json "$WORK/$2" "$WORK/$3" >"$WORK/$1.json" 2>"$WORK/$1.err" || {
		echo "  pfshim diff exited $?:"
		head -5 "$WORK/$1.err"
		return 1
	}
}

# thp_mode: the kernel's transparent huge page setting (always, madvise, never; none without THP)
thp_mode() {
	sed -n 's/.*\[\(.*\)\].*/\1/p' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null | grep . || echo none
}

# heap_fact page|start|first|chunk N: a fact of this machine's malloc, from tests/preload/heap_probe
# run natively (the page size; where the main heap starts in its page; where its first chunk
# begins; the chunk a request of N bytes takes), for a test to derive its expectation from.
heap_fact() {
	$T/heap_probe ${2:-} | awk -v k="$1" -v n="${2:-}" '$1 == k && (n == "" || $2 == n) {print $NF}'
}

# With THP "always" huge pages blur per-page counts; exact numbers hold otherwise.
thp_always() {
	[ "$(thp_mode)" = always ]
}

# The tests, one file per topic: all of them for the runner, the test's own file for a test's bash.
if [ "${1:-}" = --one ]; then
	. "$3"
else
	for f in "$ROOT"/tests/integration/*.sh; do
		. "$f"
	done
fi

# ---- one test, in a bash of its own (the runner below starts these) ----
if [ "${1:-}" = --one ]; then
	BASE=$PFS_BASE
	WORK=$BASE/t/${2#t_}
	# (the runner made the work directories, all in one process)
	cd "$WORK" 2>/dev/null || { mkdir -p "$WORK" && cd "$WORK"; } || exit 1
	if [ "$EUID" != 0 ]; then
		case " ${ROOT_TESTS:-} " in *" $2 "*) skip "needs root (to become another user, mount, or make a setuid file)" ;; esac
		case $2 in *exact*) [ -r /dev/userfaultfd ] && [ -w /dev/userfaultfd ] ||
			skip "exact mode needs root or access to /dev/userfaultfd" ;; esac
	fi
	"$2"
	exit $?
fi

# ---- the runner ----
BASE=$(mktemp -d /tmp/pfshim-tests.XXXXXX)
# traversable: some tests run programs as nobody inside their work directories
chmod 755 "$BASE"
mkdir -p "$BASE/t" "$BASE/log" "$BASE/native" "$BASE/inputs" "$BASE/memo"
chmod 755 "$BASE/t"
export PFS_BASE=$BASE
# dpkg-query's answers kept for the suite's run (tests/lib/memo/dpkg-query)
export PATH=$ROOT/tests/lib/memo:$PATH
# This machine's fault costs measured once for the suite, as `pfshim report` measures them (a
# tenth of a CPU-second a report, each report of each test); given to every test as
# PFSHIM_FAULT_COST, except the one that checks the measurement (storms.sh).
if [ -z "${PFSHIM_FAULT_COST:-}" ]; then
	mkdir -p "$BASE/cost"
	(cd "$BASE/cost" && PFSHIM_QUIET=1 PFSHIM_OUT=$BASE/cost/log LD_PRELOAD=$LIB timeout 60 $T/three_sites >/dev/null 2>&1)
	PFSHIM_FAULT_COST=$(timeout 60 "$CLI" report --format json "$BASE/cost/log" 2>/dev/null | $PY -c '
import json, sys
c = json.load(sys.stdin)["processes"][0]["storm_detection"]["fault_cost_ns"]
print("first=%dns,cow=%dns,huge=%dns" % (c["first_touch"], c["cow"], c["huge"]))' 2>/dev/null)
	[ -n "$PFSHIM_FAULT_COST" ] && export PFSHIM_FAULT_COST && echo "fault costs measured for the suite: $PFSHIM_FAULT_COST"
fi
trap 'rm -rf "$BASE"' EXIT
# the suite's jsonq server ($Q above): it ends when the runner does (its stdin closes)
mkdir -m 700 "$BASE/q" && (umask 077 && echo "$SRANDOM$SRANDOM$SRANDOM$SRANDOM$SRANDOM" >"$BASE/q/token")
coproc JSONQ { exec "$PY" "$ROOT/tests/lib/jsonq.py" --serve "$BASE/q/token"; }
read -r PFS_JSONQ_PORT <&"${JSONQ[0]}" && export PFS_JSONQ_PORT || echo "no jsonq server: each check starts python3"

all=$(declare -F | awk '$3 ~ /^t_/ {print $3}')
# each test's file, for its bash to read only that one (declare -F with extdebug: name, line, file)
declare -A file_of=()
shopt -s extdebug
while read -r t _ f; do
	file_of[$t]=$f
done < <(declare -F $all)
shopt -u extdebug
export PFS_ROOT=$ROOT PFS_BUILD=$BUILD
if [ -n "${PFS_TESTS:-}" ]; then
	tests=""
	for t in $PFS_TESTS; do
		t=t_${t#t_}
		echo "$all" | grep -qx "$t" || { echo "no test named ${t#t_}"; exit 2; }
		tests="$tests $t"
	done
else
	tests=$all
fi

# Longest first, so that the slowest does not start last: their wall seconds from this build's last
# run ($TIMES), else from tests/integration/costs (a run's figures kept with the tests: a fresh clone
# has no last run); a test in neither first.
TIMES=$BUILD/tests/integration-times
order=$(for t in $tests; do echo "$t"; done | awk -v times="$TIMES" -v costs="$ROOT/tests/integration/costs" '
	function load(f,   line, a) {
		while ((getline line <f) > 0)
			if (line !~ /^#/ && split(line, a) >= 2 && !(a[1] in wall)) wall[a[1]] = a[2]
	}
	BEGIN { load(times); load(costs) }
	{ print ($1 in wall ? wall[$1] : 999999), $1 }' | sort -k1,1nr -k2 | awk '{print $2}')

# one more than the cores: tests that wait (sleeps, a handler, the disk) leave a core to another
jobs=${PFS_JOBS:-$(($(nproc 2>/dev/null || echo 2) + 1))}
pass=0 fail=0 nskip=0 skips="" failed=""
declare -A running=() started=()
: >"$BASE/times"

finish() {
	local pid=$1 t=${running[$1]} rc
	unset "running[$pid]"
	# (bash's own reads and arithmetic: a process here is one for each of 200 tests, from a big shell)
	rc=1
	read -r rc <"$BASE/log/$t.rc" 2>/dev/null
	local secs=$((SECONDS - started[$t])) n=${t#t_} cpu=0 u s line ms
	# user and system seconds, as time printed them (TIMEFORMAT below: three decimals each)
	if read -r u s <"$BASE/log/$t.cpu" 2>/dev/null && [[ $u =~ ^[0-9]+\.[0-9]{3}$ && $s =~ ^[0-9]+\.[0-9]{3}$ ]]; then
		ms=$((10#${u/./} + 10#${s/./} + 50))
		cpu=$((ms / 1000)).$((ms % 1000 / 100))
	fi
	echo "$t $secs $cpu" >>"$BASE/times"
	if [ "$rc" = 0 ]; then
		pass=$((pass + 1))
		# what the test found of the machine (the facts its expectations came from), on its line
		local found=""
		while IFS= read -r line; do
			[[ $line =~ ^\ *found:\ (.*)$ ]] && found+=${found:+;}${BASH_REMATCH[1]}
		done <"$BASE/log/$t"
		echo "ok   $n (${secs} s, $cpu CPU-s)${found:+: found $found}"
		[ -n "${PFS_VERBOSE:-}" ] && sed 's/^/  /' "$BASE/log/$t"
		done_dirs+=("$BASE/t/$n")
		[ ${#done_dirs[@]} -lt 8 ] || { rm -rf "${done_dirs[@]}"; done_dirs=(); }
	elif [ "$rc" = $SKIP_STATUS ]; then
		nskip=$((nskip + 1))
		local why=""
		while IFS= read -r line; do
			[[ $line =~ ^SKIP:\ (.*)$ ]] && { why=${BASH_REMATCH[1]}; break; }
		done <"$BASE/log/$t"
		echo "SKIP $n: $why"
		skips="$skips  SKIP $n: $why"$'\n'
		done_dirs+=("$BASE/t/$n")
		[ ${#done_dirs[@]} -lt 8 ] || { rm -rf "${done_dirs[@]}"; done_dirs=(); }
	else
		fail=$((fail + 1))
		failed="$failed $n"
		[ "$rc" = 124 ] && echo "  (killed after $TEST_LIMIT s)" >>"$BASE/log/$t"
		echo "FAIL $n (${secs} s, $cpu CPU-s)"
		sed 's/^/  /' "$BASE/log/$t" | head -100
	fi
}

# the tests' work directories, made in one process; a passed or skipped test's removed with seven others'
done_dirs=()
work_dirs=()
for t in $order; do
	work_dirs+=("$BASE/t/${t#t_}")
done
mkdir -p "${work_dirs[@]}"
for t in $order; do
	while [ ${#running[@]} -ge "$jobs" ]; do
		wait -n -p done_pid
		finish "$done_pid"
	done
	started[$t]=$SECONDS
	(
		TIMEFORMAT='%U %S'
		{ time timeout -k 10 "$TEST_LIMIT" bash "$ROOT/tests/run-integration.sh" --one "$t" "${file_of[$t]}" >"$BASE/log/$t" 2>&1 </dev/null; } \
			2>"$BASE/log/$t.cpu"
		echo $? >"$BASE/log/$t.rc"
	) &
	running[$!]=$t
done
while [ ${#running[@]} -gt 0 ]; do
	wait -n -p done_pid
	finish "$done_pid"
done
[ ${#done_dirs[@]} -eq 0 ] || rm -rf "${done_dirs[@]}"

# keep the times of the tests that ran, for the next run's order
{ cat "$BASE/times"; [ ! -f "$TIMES" ] || awk 'NR == FNR {seen[$1] = 1; next} !($1 in seen)' "$BASE/times" "$TIMES"; } \
	2>/dev/null >"$TIMES.new" && mv "$TIMES.new" "$TIMES"

if [ $fail -gt 0 ]; then
	# the failed tests' work directories stay for a look
	trap - EXIT
	echo "failed:$failed (work directories in $BASE/t)"
fi
# the CPU the tests took (user and system time of each, its programs included; and the jsonq
# server's for their checks): a loaded machine stretches the wall time, not this
qcpu=0
if [ -n "${PFS_JSONQ_PORT:-}" ]; then
	exec {JSONQ[1]}>&-
	read -r qcpu <&"${JSONQ[0]}"
	wait "$JSONQ_PID"
fi
echo "integration: $(awk -v q="${qcpu:-0}" '{s += $3} END {print s + q}' "$BASE/times") CPU-seconds in the tests (${qcpu:-0} in their jsonq server)"
line="integration: $pass passed, $fail failed, $nskip skipped"
[ -n "$skips" ] && printf '%s' "$skips"
echo "$line"
[ -n "${PFS_SUMMARY:-}" ] && printf '%s\n%s' "$line" "$skips" >"$PFS_SUMMARY"
[ $((pass + fail + nskip)) -gt 0 ] || { echo "integration: no test ran"; exit 1; }
[ $fail -eq 0 ]
