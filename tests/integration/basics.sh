# The basics: allocation sites and their counts, processes (fork, exec, spawn, threads), the
# summary line, bad variables, log files and the record command.

t_three_sites() {
	run_both three $T/three_sites || return 1
	report three || return 1
	$Q "$WORK/three.json" \
		'r["mode"] == "fast"' \
		'len(r["processes"]) == 1' \
		'site(proc(r), "site_alpha")["allocations"] == 3' \
		'site(proc(r), "site_alpha")["bytes_allocated"] == 300' \
		'site(proc(r), "site_alpha")["kind"] == "malloc"' \
		'site(proc(r), "site_beta")["allocations"] == 5' \
		'site(proc(r), "site_beta")["bytes_allocated"] == 1000' \
		'site(proc(r), "site_gamma")["allocations"] == 7' \
		'site(proc(r), "site_gamma")["bytes_allocated"] == 2100' \
		'site(proc(r), "site_gamma")["kind"] == "calloc"' \
		'site(proc(r), "site_big")["allocations"] == 1' \
		'site(proc(r), "site_big")["bytes_allocated"] == 1 << 20' \
		'site(proc(r), "site_alpha")["frames"][0]["file"].endswith("three_sites.c")' \
		'site(proc(r), "site_alpha")["frames"][1]["function"] == "main"'
}

t_text_report_names_file_line() {
	run_both threetext $T/three_sites || return 1
	report threetext text || return 1
	grep -q 'site_alpha' "$WORK/threetext.text" && grep -Eq 'three_sites\.c:[0-9]+' "$WORK/threetext.text" || {
		echo "  text report lacks site_alpha with file:line"
		head -30 "$WORK/threetext.text"
		return 1
	}
}

t_summary_line() {
	(cd "$WORK" && PFSHIM_OUT="$WORK/sum" LD_PRELOAD=$LIB $T/three_sites >/dev/null 2>"$WORK/sum.err")
	grep -c '^pfshim: ' "$WORK/sum.err" | grep -qx 1 && grep -q "logs in $WORK/sum" "$WORK/sum.err" || {
		echo "  expected one summary line naming the directory:"
		cat "$WORK/sum.err"
		return 1
	}
	(cd "$WORK" && PFSHIM_QUIET=1 PFSHIM_OUT="$WORK/sumq" LD_PRELOAD=$LIB $T/three_sites >/dev/null 2>"$WORK/sumq.err")
	[ ! -s "$WORK/sumq.err" ] || { echo "  PFSHIM_QUIET=1 still printed:"; cat "$WORK/sumq.err"; return 1; }
}

t_sigkill_log_readable() {
	local dir=$WORK/killed
	mkfifo "$WORK/killed.fifo"
	PFSHIM_OUT=$dir LD_PRELOAD=$LIB $T/killed 1000 >"$WORK/killed.fifo" &
	local pid=$!
	read -t 60 -r line <"$WORK/killed.fifo"
	kill -KILL $pid
	wait $pid 2>/dev/null
	[ "$line" = "ready 1000" ] || { echo "  program said '$line'"; return 1; }
	report killed || return 1
	$Q "$WORK/killed.json" \
		'site(proc(r), "victim_site")["allocations"] == 1000' \
		'site(proc(r), "victim_site")["bytes_allocated"] == 64000' \
		'site(proc(r), "victim_big")["bytes_allocated"] == 256 * 1024'
}

t_fork_per_process() {
	run_both fork $T/forker || return 1
	report fork || return 1
	$Q "$WORK/fork.json" \
		'len(r["processes"]) == 2' \
		'sorted(p["pid"] for p in r["processes"])[0] in [p["ppid"] for p in r["processes"]]' \
		'[p for p in r["processes"] if sites(p, "child_site")][0]["ppid"] == [p for p in r["processes"] if sites(p, "parent_site")][0]["pid"]' \
		'sum(s["allocations"] for p in r["processes"] for s in sites(p, "parent_site")) == 11' \
		'sum(s["allocations"] for p in r["processes"] for s in sites(p, "child_site")) == 13' \
		'all(sum(s["allocations"] for s in sites(p, "parent_site")) == 0 or sum(s["allocations"] for s in sites(p, "child_site")) == 0 for p in r["processes"])'
}

t_threads_exact() {
	run_both threads $T/threads || return 1
	report threads || return 1
	local bytes
	bytes=$($PY -c 'print(8 * sum(32 + i % 64 for i in range(20000)))')
	$Q "$WORK/threads.json" \
		'site(proc(r), "thread_site")["allocations"] == 160000' \
		"site(proc(r), \"thread_site\")[\"bytes_allocated\"] == $bytes"
}

t_spawn_family() {
	run_both spawn $T/spawner || return 1
	report spawn || return 1
	$Q "$WORK/spawn.json" 'len(r["processes"]) >= 3'
}

t_exec_chain() {
	run_both exec $T/exec_chain 3 || return 1
	report exec || return 1
	$Q "$WORK/exec.json" \
		'len(r["processes"]) == 4' \
		'len(set(p["pid"] for p in r["processes"])) == 1' \
		'sorted(p["exec_gen"] for p in r["processes"]) == [0, 1, 2, 3]' \
		'all(site(p, "chain_site")["allocations"] == 9 for p in r["processes"])' || return 1
	# one process, one file: each image exec'd goes on in its predecessor's file
	[ "$(ls "$WORK/exec" | grep -c 'pfslog$')" = 1 ] || { echo "  log files:"; ls "$WORK/exec"; return 1; }
}

t_mappings_kinds() {
	run_both maps $T/mappings || return 1
	report maps || return 1
	$Q "$WORK/maps.json" \
		'site(proc(r), "map_anon_site")["kind"] == "mmap"' \
		'site(proc(r), "map_anon_site")["bytes_allocated"] == 8 << 20' \
		'site(proc(r), "map_file_site")["kind"] == "mmap-file"' \
		'all(s["kind"] == "aligned" for s in sites(proc(r), "aligned_site"))' \
		'sum(s["allocations"] for s in sites(proc(r), "aligned_site")) == 2' \
		'sum(s["bytes_allocated"] for s in sites(proc(r), "aligned_site")) == 1000 + 8192' \
		'site(proc(r), "realloc_site")["kind"] == "realloc"' \
		'site(proc(r), "realloc_site")["allocations"] == 4'
}

t_errno_kept() {
	run_both errno $T/errno_keep || return 1
	grep -qx 'errno kept' "$WORK/errno.out" || { cat "$WORK/errno.out"; return 1; }
}

t_fds_closed_and_replaced() {
	run_both fds $T/fd_hostile 50000 || return 1
	report fds || return 1
	$Q "$WORK/fds.json" \
		'site(proc(r), "hostile_site")["allocations"] == 50000' \
		'proc(r)["ended"] is True'
}

t_thread_churn() {
	run_both churn $T/thread_churn || return 1
	report churn || return 1
	$Q "$WORK/churn.json" 'site(proc(r), "churn_site")["allocations"] == 20000'
}

t_fork_with_busy_threads() {
	run_both forkth $T/fork_threads || return 1
	report forkth || return 1
	$Q "$WORK/forkth.json" 'len(r["processes"]) == 31' \
		'sum(1 for p in r["processes"] if sites(p, "child_work")) == 30'
}

t_bad_variable_one_line() {
	# Every variable with a bad value: one line each, the default kept, the program as without the shim.
	RUN_ENV="PFSHIM_MODE=bogus PFSHIM_SCAN_MS=-3 PFSHIM_QUIET=maybe PFSHIM_PAGEMAP=guess PFSHIM_TOUCH_SITE=2 PFSHIM_RUN=abc PFSHIM_SACN_MS=5" \
		run_both badvar $T/three_sites || return 1
	local v
	for v in "PFSHIM_MODE='bogus'" "PFSHIM_SCAN_MS='-3'" "PFSHIM_QUIET='maybe'" "PFSHIM_PAGEMAP='guess'" \
		"PFSHIM_TOUCH_SITE='2'" "PFSHIM_RUN='abc'" "unknown variable PFSHIM_SACN_MS"; do
		[ "$(grep -c "^pfshim: $v" "$WORK/badvar.err")" = 1 ] || {
			echo "  expected one line for $v:"; cat "$WORK/badvar.err"; return 1; }
	done
	[ "$(grep -c '^pfshim: ' "$WORK/badvar.err")" = 8 ] || { echo "  more lines than bad variables (and the summary):"; cat "$WORK/badvar.err"; return 1; }
	# A directory name longer than PATH_MAX: said once; the default directory is used.
	local long
	long=$(head -c 5000 /dev/zero | tr '\0' a)
	(cd "$WORK" && PFSHIM_QUIET=1 PFSHIM_OUT=$long LD_PRELOAD=$LIB $T/three_sites >"$WORK/longout.out" 2>"$WORK/longout.err")
	[ $? = 3 ] && [ "$(grep -c '^pfshim: PFSHIM_OUT is too long' "$WORK/longout.err")" = 1 ] || {
		echo "  long PFSHIM_OUT:"; cat "$WORK/longout.err"; return 1; }
}

t_unwritable_dir_runs_on() {
	(cd "$WORK" && PFSHIM_OUT=/proc/no/such/dir LD_PRELOAD=$LIB $T/three_sites >"$WORK/nodir.out" 2>"$WORK/nodir.err")
	local rc=$?
	[ $rc = 3 ] && grep -q '^allocated 16 blocks$' "$WORK/nodir.out" &&
		[ "$(grep -c '^pfshim: cannot use log directory' "$WORK/nodir.err")" = 1 ] || {
		echo "  rc=$rc; stderr:"
		cat "$WORK/nodir.err"
		return 1
	}
}

t_log_permissions() {
	run_both perm $T/three_sites || return 1
	[ "$(stat -c %a "$WORK/perm")" = 700 ] || { echo "  directory mode $(stat -c %a "$WORK/perm")"; return 1; }
	for f in "$WORK"/perm/*.pfslog; do
		[ "$(stat -c %a "$f")" = 600 ] || { echo "  $f mode $(stat -c %a "$f")"; return 1; }
	done
}

t_record_command() {
	(cd "$WORK" && "$CLI" record -o "$WORK/rec" -- $T/three_sites >"$WORK/rec.out" 2>"$WORK/rec.err")
	local rc=$?
	[ $rc = 3 ] && grep -q '^allocated 16 blocks$' "$WORK/rec.out" && grep -q site_alpha "$WORK/rec.err" || {
		echo "  rc=$rc; stderr:"
		head -20 "$WORK/rec.err"
		return 1
	}
}
