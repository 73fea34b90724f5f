# Reading a run of many processes: the answer first (processes by faults, the run's top sites),
# the filters on real logs, a pager on a terminal only.

t_reading_big_run_answer_first() {
	# a shell wrapper around the program, as pyenv's and many launchers are
	run_both bigrun bash -c "for i in 1 2 3; do /bin/true; done; ls / >/dev/null; exec $BUILD/examples/storm" || return 1
	report bigrun text || return 1
	local top
	top=$(grep -n '^# Top sites of the run' "$WORK/bigrun.text" | cut -d: -f1)
	[ -n "$top" ] && [ "$top" -lt 40 ] || { echo "  the run's top sites come at line ${top:-never}"; head -40 "$WORK/bigrun.text"; return 1; }
	# the first site of the run is the storm, with its process, in the first lines after the heading
	sed -n "$((top + 1)),$((top + 6))p" "$WORK/bigrun.text" | grep -Eq '^ +1 .*#[0-9]+ .*  pid [0-9]+ .*storm' &&
		sed -n "$((top + 1)),$((top + 8))p" "$WORK/bigrun.text" | grep -q 'storm_site (storm.c:' || {
		echo "  the run's first site is not the storm:"; sed -n "$top,$((top + 10))p" "$WORK/bigrun.text"; return 1; }
	# the busiest process first in the summary
	grep -A4 '^# Processes by faults' "$WORK/bigrun.text" | sed -n 4p | grep -q storm || {
		echo "  the storm is not the busiest process:"; grep -A6 '^# Processes by faults' "$WORK/bigrun.text"; return 1; }
	# --comm and --pid narrow it to the program
	"$CLI" report --comm storm --format json "$WORK/bigrun" >"$WORK/bigrun.comm.json" || return 1
	$Q "$WORK/bigrun.comm.json" 'len(r["processes"]) == 1' 'r["processes_in_run"] >= 5' \
		'proc(r)["sites"][0]["frames"][0]["function"] == "storm_site"' || return 1
	local pid
	pid=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["processes"][0]["pid"])' "$WORK/bigrun.comm.json")
	"$CLI" report --pid "$pid" --format json "$WORK/bigrun" >"$WORK/bigrun.pid.json" || return 1
	# the pid's every image (the shell before its exec, then storm)
	$Q "$WORK/bigrun.pid.json" "all(p['pid'] == $pid for p in r['processes'])" 'any("storm" in p["command"] for p in r["processes"])' || return 1
	# --site: the storm's site alone, in text
	"$CLI" report --site 'storm_*' "$WORK/bigrun" >"$WORK/bigrun.site.text" || return 1
	[ "$(grep -c ' #[0-9]' "$WORK/bigrun.site.text")" -ge 1 ] && ! grep -q 'quiet_site' "$WORK/bigrun.site.text" || {
		echo "  --site left other sites in:"; grep ' #[0-9]' "$WORK/bigrun.site.text" | head; return 1; }
}

# The storm's faults are in a window around it, and not in one before it.
t_reading_time_window() {
	run_both window $BUILD/examples/storm || return 1
	report window || return 1
	local s e
	read -r s e < <($PY -c 'import json,sys; st=json.load(open(sys.argv[1]))["processes"][0]["storms"][0]; print(st["start_ns"], st["end_ns"])' "$WORK/window.json")
	"$CLI" report --format json --since "$((s / 1000))us" --until "$((e / 1000 + 1000))us" "$WORK/window" >"$WORK/window.in.json" || return 1
	"$CLI" report --format json --until "$((s / 1000 > 1000 ? s / 1000 - 1000 : 0))us" "$WORK/window" >"$WORK/window.before.json" || return 1
	$Q "$WORK/window.in.json" 'site(proc(r), "storm_site")["first_touch_faults"] >= 8000' 'len(proc(r)["storms"]) >= 1' || return 1
	$Q "$WORK/window.before.json" 'not sites(proc(r), "storm_site")' 'proc(r)["storms"] == []'
}

# $PAGER on a terminal (script gives one), never in a pipe; a pager quit early is no error.
t_reading_pager_only_on_a_terminal() {
	run_both pager $T/three_sites || return 1
	rm -f "$WORK/paged"
	PAGER="cat > $WORK/paged" script -qec "$CLI report $WORK/pager" /dev/null >"$WORK/pager.tty" 2>&1
	grep -q '# pfshim report' "$WORK/paged" 2>/dev/null && grep -q site_alpha "$WORK/paged" || {
		echo "  the pager did not get the report:"; head -3 "$WORK/pager.tty"; return 1; }
	rm -f "$WORK/paged"
	PAGER="cat > $WORK/paged" "$CLI" report "$WORK/pager" >"$WORK/pager.pipe" 2>&1 || return 1
	[ ! -e "$WORK/paged" ] && grep -q site_alpha "$WORK/pager.pipe" || { echo "  a pager in a pipe"; return 1; }
	PAGER="head -1 >/dev/null" script -qec "$CLI report --top 0 --depth all $WORK/pager; echo rc=\$?" /dev/null >"$WORK/pager.quit" 2>&1
	grep -q 'rc=0' "$WORK/pager.quit" && ! grep -q 'cannot write' "$WORK/pager.quit" || {
		echo "  a pager quit early:"; cat "$WORK/pager.quit"; return 1; }
}
