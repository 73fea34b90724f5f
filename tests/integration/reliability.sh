# Reliability and security, round two (issue 19): what a hostile day does to the shim.

# handlers_of TOKEN: the pids of exact mode's handlers (named pfshim-handler) of the program whose
# command line holds TOKEN (a handler shares the program's memory, so its command line is the program's).
handlers_of() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = pfshim-handler ] || continue
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$1" && echo "${p#/proc/}"
	done
}

# wait_for FILE: up to 60 s.
wait_for() {
	local i
	for i in $(seq 1 600); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	echo "  $1 never appeared"
	return 1
}

# Killing the handlers (kill -9) harms nothing: no SIGPIPE at exit, one line saying so, and the
# rest of the run is counted in fast mode.  They are named pfshim-handler and have a process group
# of their own, so a signal to the program's group or name is not theirs.
t_exact_handler_killed() {
	local d=$WORK/hkill
	mkdir -p "$d"
	touch "$d/go.native"
	$T/handler_kill "$d/ready.native" "$d/go.native" >"$d/native"
	local native_rc=$?
	(cd "$d" && PFSHIM_MODE=uffd PFSHIM_OUT="$d/logs" LD_PRELOAD=$LIB $T/handler_kill "$d/ready" "$d/go" \
		>"$d/out" 2>"$d/err"; echo $? >"$d/rc") &
	local job=$!
	wait_for "$d/ready" || { touch "$d/go"; wait $job; return 1; }
	local prog hs h
	prog=$(pgrep -f -- "handler_kill $d/ready" | head -1)
	hs=$(handlers_of "$d/ready")
	[ -n "$hs" ] || { echo "  no process named pfshim-handler for the program"; touch "$d/go"; wait $job; return 1; }
	for h in $hs; do
		[ "$(ps -o pgid= -p "$h")" != "$(ps -o pgid= -p "$prog")" ] || {
			echo "  handler $h is in the program's process group"; kill -9 $hs; touch "$d/go"; wait $job; return 1; }
	done
	kill -9 $hs
	# The program goes on once they are dead (exited: their descriptors closed), not while they
	# die: a registration that borrowed a dying handler's descriptor is dropped with it a moment
	# later, and the touches in between are nobody's (CI once, on a loaded machine).
	for i in $(seq 200); do
		for h in $hs; do
			[ -e /proc/$h ] && [ "$(awk '{print $3}' /proc/$h/stat 2>/dev/null)" != Z ] && { sleep 0.01; continue 2; }
		done
		break
	done
	touch "$d/go"
	wait $job
	[ "$(cat "$d/rc")" = "$native_rc" ] || { echo "  exit status $(cat "$d/rc"), $native_rc without the shim"; cat "$d/err"; return 1; }
	cmp -s "$d/native" "$d/out" || { echo "  output differs"; return 1; }
	[ "$(grep -c '^pfshim: exact mode: a fault handler was killed' "$d/err")" = 1 ] || {
		echo "  expected one line about the killed handler:"; cat "$d/err"; return 1; }
	"$CLI" report --format json "$d/logs" >"$d/r.json" || return 1
	$Q "$d/r.json" 'proc(r)["ended"]' \
		'site(proc(r), "before_site")["first_touch_faults"] == 50' \
		'site(proc(r), "after_site")["first_touch_faults"] == 100'
}

# A program that closes every descriptor (close_range, closefrom) keeps exact mode: the handlers'
# descriptors are in their own tables; the program's side (a socket and pidfds) is reopened or
# not needed, and nothing is said.
t_exact_survives_close_range() {
	local how
	for how in close_range closefrom; do
		RUN_ENV=PFSHIM_MODE=uffd run_both xclose-$how $T/close_all $how || return 1
		[ "$(grep -c '^pfshim: ' "$WORK/xclose-$how.err")" = 1 ] || { echo "  $how: more than the summary line:"; cat "$WORK/xclose-$how.err"; return 1; }
		report xclose-$how || return 1
		$Q "$WORK/xclose-$how.json" 'r["mode"] == "exact"' \
			'site(proc(r), "early_site")["first_touch_faults"] == 30' \
			'site(proc(r), "late_site")["first_touch_faults"] == 100' \
			'site(proc(r), "late_malloc_site")["first_touch_faults"] >= 199' || { echo "  after $how"; return 1; }
	done
}

# The handler touches no lock or state of the program's libc (the `timeout` hang of issue 19: a
# handler whose log could not grow said so with strerror, took libc's locale locks for reading,
# and died on its empty thread-local locale; the program then hung in setlocale).  A full disk
# makes the handler the first to fail here: the program finishes, and says once what was lost.
t_exact_handler_full_disk_leaves_libc_alone() {
	local d=$WORK/xtiny
	mkdir -p "$d"
	mount -t tmpfs -o size=64k tmpfs "$d" 2>/dev/null || { echo "  (no tmpfs mount here: skipped)"; return 0; }
	$T/handler_locale >"$WORK/xtiny.native" 2>/dev/null
	(cd "$WORK" && PFSHIM_MODE=uffd PFSHIM_OUT="$d/logs" timeout 60 sh -c 'LD_PRELOAD=$0 exec "$@"' "$LIB" \
		$T/handler_locale >"$WORK/xtiny.out" 2>"$WORK/xtiny.err")
	local rc=$?
	umount -l "$d"
	[ $rc = 0 ] && cmp -s "$WORK/xtiny.native" "$WORK/xtiny.out" || { echo "  rc=$rc (124: hung)"; cat "$WORK/xtiny.err"; return 1; }
	[ "$(grep -c '^pfshim: log .*cannot grow' "$WORK/xtiny.err")" = 1 ] || { echo "  expected one line about the full log:"; cat "$WORK/xtiny.err"; return 1; }
}

# Runs of coreutils' timeout (which sets its locale first thing) traced in exact mode, four at a
# time on a loaded machine: none of the 500 hangs (each has 30 s).
t_exact_timeout_many_runs() {
	local d=$WORK/xtimeout
	mkdir -p "$d"
	$PY "$ROOT/tests/lib/runmany.py" 500 4 30 PFSHIM_MODE=exact PFSHIM_QUIET=1 PFSHIM_OUT="$d/{}" LD_PRELOAD="$LIB" \
		timeout 10 true >"$d/runs" || { echo "  $(cat "$d/runs")"; return 1; }
	echo "  found: $(cat "$d/runs")"
	rm -rf "$d"
}

# Children the hooks did not see being made (raw clone3, clone, fork system calls) are found on
# their first call into the shim and set up as forked children: no crash (they used to write into
# their parent's log, unmapped in them), each has a log of its own.  Both modes.
t_raw_clone_children() {
	local mode KIDS='[p for p in r["processes"] if p["ppid"] in [q["pid"] for q in r["processes"]]]'

	for mode in fast exact; do
		RUN_ENV=PFSHIM_MODE=$mode run_both rawclone-$mode $T/raw_clone || return 1
		report rawclone-$mode || return 1
		$Q "$WORK/rawclone-$mode.json" 'len(r["processes"]) == 4' \
			"len($KIDS) == 3" \
			"all(site(p, \"child_small_site\")[\"allocations\"] == 100 for p in $KIDS)" \
			"all(site(p, \"child_big_site\")[\"first_touch_faults\"] == 20 for p in $KIDS)" \
			|| { echo "  in $mode mode"; return 1; }
	done
}

# The log directory is opened once (O_DIRECTORY|O_NOFOLLOW) and the logs created relative to it:
# another user who may write its parent swaps it with a symlink to a root-only directory and back
# (atomically, as fast as it can) while root runs 300 traced programs there, four at a time; no
# log ever lands in the target (checking the directory, then opening the log by path, lost within
# 40 runs).
t_log_dir_swap_race() {
	local d=$WORK/swap
	mkdir -p "$d/parent" "$d/secret" && chmod 755 "$d" "$WORK" && chmod 700 "$d/secret" && chown nobody "$d/parent"
	install -m 0755 $T/dir_swap "$d/"
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$d/dir_swap" "$d/parent" "$d/secret" 300 >"$d/attacker.out" &
	local attacker=$! rc=0
	(cd "$d" && $PY "$ROOT/tests/lib/runmany.py" 300 4 60 --status 3 --err "$d/err" PFSHIM_QUIET=1 \
		PFSHIM_OUT="$d/parent/logs" LD_PRELOAD="$LIB" $T/three_sites >"$d/runs") || rc=1
	kill $attacker 2>/dev/null
	wait $attacker 2>/dev/null
	[ $rc = 0 ] || { echo "  the traced program's exit status changed: $(cat "$d/runs")"; return 1; }
	[ -z "$(ls -A "$d/secret")" ] || { echo "  a run wrote into the symlink's target: $(ls "$d/secret")"; return 1; }
	find "$d/parent" -name '*.pfslog' | grep -q . || { echo "  no run was traced at all:"; sort "$d/err" | uniq -c; return 1; }
	echo "  found: $(cat "$d/runs")"
}

# A directory every user may write (PFSHIM_OUT=/tmp, say) is used only if it is sticky and ours,
# through a private subdirectory made in it, which the run's children use too; not sticky, the
# program runs untraced with one line saying why.
t_log_dir_world_writable() {
	local d=$WORK/ww
	mkdir -p "$d/sticky" "$d/open" && chmod 1777 "$d/sticky" && chmod 777 "$d/open"
	(cd "$WORK" && PFSHIM_OUT="$d/sticky" LD_PRELOAD=$LIB bash -c "$T/three_sites; $T/three_sites" >/dev/null 2>"$d/sticky.err")
	local sub
	sub=$(ls "$d/sticky")
	[ "$(echo "$sub" | wc -l)" = 1 ] && [ "$(stat -c '%a %U' "$d/sticky/$sub")" = "700 $(id -un)" ] || {
		echo "  expected one private subdirectory:"; ls -la "$d/sticky"; return 1; }
	# bash's file and its forked child's (each exec'd image goes on in its process's file)
	[ "$(ls "$d/sticky/$sub" | grep -c 'pfslog$')" -ge 2 ] || { echo "  the children logged elsewhere:"; find "$d/sticky"; return 1; }
	grep -q "logs in $d/sticky/$sub:" "$d/sticky.err" || { cat "$d/sticky.err"; return 1; }
	(cd "$WORK" && PFSHIM_OUT="$d/open" LD_PRELOAD=$LIB $T/three_sites >/dev/null 2>"$d/open.err")
	[ $? = 3 ] && [ -z "$(ls -A "$d/open")" ] && [ "$(grep -c "^pfshim: cannot use log directory $d/open (writable by every user and not sticky)" "$d/open.err")" = 1 ] || {
		echo "  a world-writable directory without the sticky bit:"; cat "$d/open.err"; ls -A "$d/open"; return 1; }
}

# Memory stays bounded however long the log grows: a block's pages leave the process once its
# writer moves on, a segment is unmapped once every block in it is left (each used to stay
# mapped: a steady allocator's resident memory grew with its log).  40,000 rounds write about
# 10 MiB of log (60,000 in `make fuzz`); the program's own resident memory grows by less than 4 MiB
# under the shim, with a log more than twice that.
t_log_memory_bounded() {
	local mode rounds
	rounds=$(soak 40000 60000)
	for mode in fast exact; do
		RUN_ENV="PFSHIM_MODE=$mode PFSHIM_QUIET=1" run_both steady-$mode $T/steady_alloc "$rounds" -r || return 1
		local kb size
		kb=$(sed -n 's/^rss grew \(-*[0-9]*\) kB$/\1/p' "$WORK/steady-$mode.err")
		size=$(du -sk "$WORK/steady-$mode" | cut -f1)
		[ -n "$kb" ] && [ "$kb" -lt 4096 ] || { echo "  $mode: resident memory grew by ${kb:-?} kB with a log of $size kB"; return 1; }
		[ "$size" -gt 8192 ] || { echo "  $mode: the log is only $size kB"; return 1; }
		report steady-$mode || return 1
		$Q "$WORK/steady-$mode.json" "site(proc(r), \"block_site\")[\"allocations\"] == $rounds" 'proc(r)["ended"]' || return 1
	done
}

# PFSHIM_LOG_MAX bounds a process's log: past it records are dropped (one line says so), the
# allocation counters go on, and the process's end is still written.
t_log_max_caps_the_log() {
	# the command line of t_log_memory_bounded: one native run for both
	RUN_ENV="PFSHIM_LOG_MAX=2M" run_both logmax $T/steady_alloc 40000 -r || return 1
	local size
	size=$(du -sk "$WORK/logmax" | cut -f1)
	[ "$size" -le 2100 ] || { echo "  the log is $size kB"; return 1; }
	[ "$(grep -c '^pfshim: log .* reached PFSHIM_LOG_MAX (2 MiB)' "$WORK/logmax.err")" = 1 ] || { cat "$WORK/logmax.err"; return 1; }
	grep -Eq ": 800[0-9]{2} allocations" "$WORK/logmax.err" || { echo "  the summary does not count every allocation:"; cat "$WORK/logmax.err"; return 1; }
	report logmax || return 1
	report logmax text || return 1
	grep -q 'the shim lost [0-9]* records' "$WORK/logmax.text" || { echo "  the report does not say records were dropped"; return 1; }
	$Q "$WORK/logmax.json" 'proc(r)["ended"]' 'site(proc(r), "block_site")["allocations"] > 1000'
}

# A program that serves its own page faults with userfaultfd works under the shim: at its
# UFFDIO_REGISTER the shim steps back from that memory (its registration there made the
# program's fail with EBUSY) and says so once; the rest of its memory is counted as before.
t_program_own_userfaultfd() {
	local mode
	for mode in uffd fast; do
		RUN_ENV=PFSHIM_MODE=$mode run_both ownuffd-$mode $T/own_uffd || return 1
		grep -q 'contents ok' "$WORK/ownuffd-$mode.out" || { cat "$WORK/ownuffd-$mode.out"; return 1; }
		report ownuffd-$mode || return 1
		$Q "$WORK/ownuffd-$mode.json" 'site(proc(r), "other_site")["first_touch_faults"] == 20' || return 1
	done
	[ "$(grep -c '^pfshim: exact mode: process [0-9]* serves its own page faults with userfaultfd' "$WORK/ownuffd-uffd.err")" = 1 ] || {
		echo "  expected one line in exact mode:"; cat "$WORK/ownuffd-exact.err"; return 1; }
}

# Exact mode narrows the signal window in malloc: the page past the heap's top chunk header is made
# present by the shim when carving reaches it, so malloc's split of the top never waits for the
# fault handler with the top half made (a signal handler that mallocs then aborted).  Natively the
# window is the fault's own length (a signal pending at a fault's return runs before the store is
# made again); the share of signals that find the top half made is compared, on a loaded CPU.
t_exact_signal_in_malloc_no_worse_than_native() {
	local d=$WORK/sigtop i
	mkdir -p "$d"
	taskset -c 0 sh -c 'while :; do :; done' &
	local busy=$!
	for i in 1 2 3; do
		taskset -c 0 $T/signal_top 1000 20 200 >/dev/null 2>>"$d/native"
		(cd "$d" && PFSHIM_MODE=uffd PFSHIM_QUIET=1 PFSHIM_OUT="$d/logs$i" taskset -c 0 env LD_PRELOAD=$LIB \
			$T/signal_top 1000 20 200 >"$d/out$i" 2>>"$d/shim") || { kill $busy; echo "  run $i failed"; return 1; }
	done
	kill $busy
	wait $busy 2>/dev/null
	$PY - "$d/native" "$d/shim" <<'PY' || return 1
import re, sys
def share(path):
    runs = [tuple(map(int, m)) for m in re.findall(r"(\d+) signals, (\d+) found", open(path).read())]
    return sum(c for s, c in runs) / max(1, sum(s for s, c in runs)), runs
native, nruns = share(sys.argv[1])
shim, sruns = share(sys.argv[2])
print("  signals finding the top half made: native %.0f%% %s, exact mode %.0f%% %s" % (100 * native, nruns, 100 * shim, sruns))
sys.exit(0 if len(sruns) == 3 and shim <= native + 0.05 else 1)
PY
}

# Programs built with a sanitizer whose allocator comes before the shim (gcc's ASan, first in
# LD_PRELOAD as it insists; clang's MemorySanitizer, linked into the executable) run as without the
# shim, and one line at start names the runtime that serves their allocations.
t_sanitizer_allocator_named() {
	local d=$WORK/san asan
	mkdir -p "$d"
	asan=$(gcc -print-file-name=libasan.so)
	gcc -O1 -g -fsanitize=address -o "$d/asan_sites" "$ROOT/tests/preload/three_sites.c" || return 1
	RUN_ENV=ASAN_OPTIONS=detect_leaks=0 run_both asan sh -c 'ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$0 $LD_PRELOAD" exec "$@"' "$asan" "$d/asan_sites" || return 1
	[ "$(grep -c '^pfshim: malloc in process [0-9]* is AddressSanitizer.s runtime' "$WORK/asan.err")" = 1 ] &&
		[ "$(grep -c '^pfshim: ' "$WORK/asan.err")" = 2 ] || { echo "  expected one line naming AddressSanitizer:"; cat "$WORK/asan.err"; return 1; }
	if command -v clang >/dev/null && clang -O1 -g -fsanitize=memory -o "$d/msan_sites" "$ROOT/tests/preload/three_sites.c" 2>/dev/null; then
		run_both msan "$d/msan_sites" || return 1
		[ "$(grep -c '^pfshim: malloc in process [0-9]* is MemorySanitizer.s runtime' "$WORK/msan.err")" = 1 ] || {
			echo "  expected one line naming MemorySanitizer:"; cat "$WORK/msan.err"; return 1; }
	fi
}
