# Storms by cost (issue 18): a storm is where the program spent 10% of its time or more taking
# faults, at this machine's cost per fault (docs/analyzer.md, "Storms").  The same program shows the
# same storm in fast and exact mode (exact mode's handler time is taken out of its timeline), a
# program that is one storm shows it, a program that allocates steadily shows none.

# storms_of NAME: the storms of $WORK/NAME's one process as "site faults share one_scan" lines.
storms_of() {
	$PY -c '
import json, sys
r = json.load(open(sys.argv[1]))
p = r["processes"][0]
names = {s["id"]: s["label"]["function"] for s in p["sites"]}
for st in p["storms"]:
    print(names.get(st["top_site"]), st["faults"], round(st["share"], 2), st["one_scan"])
' "$WORK/$1.json"
}

# check_storm_rule NAME: every storm agrees with the rule shown (its share at the threshold or above,
# unless one scan found it whole), and the rule is the one docs/analyzer.md gives.
check_storm_rule() {
	$Q "$WORK/$1.json" \
		'proc(r)["storm_detection"]["share"] == 0.1' \
		'proc(r)["storm_detection"]["fault_cost_ns"]["source"].startswith("measured")' \
		'proc(r)["storm_detection"]["fault_cost_ns"]["first_touch"] > 0' \
		'abs(proc(r)["storm_detection"]["threshold_rate"] * proc(r)["storm_detection"]["fault_cost_ns"]["first_touch"] / 1e9 - 0.1) < 1e-6' \
		'all(s["one_scan"] or s["share"] >= 0.1 for s in proc(r)["storms"])'
}

t_storm_one_storm_program_fast_and_exact() {
	unset PFSHIM_FAULT_COST	# the report's own measurement (the runner gives other tests the suite's)
	local m least
	for m in fast exact uffd; do
		# 16,384 faults; on userfaultfd each waits for a handler, and on a loaded machine a few of
		# the storm's 10 ms buckets fall under the share that makes a storm (13,967 seen at load 30;
		# 11,605 in CI before the handlers counted their waits for a CPU and sampled the program's)
		least=15000
		[ $m = uffd ] && least=13000
		RUN_ENV="PFSHIM_MODE=$m" run_both "ostorm$m" $T/one_storm || return 1
		report "ostorm$m" || return 1
		check_storm_rule "ostorm$m" || return 1
		# 64 MiB written at once, nothing else: its storm, topped by its site, holding its faults
		$Q "$WORK/ostorm$m.json" \
			"r[\"mode\"] == \"${m/uffd/exact}\"" \
			'len(proc(r)["storms"]) >= 1' \
			'sum(s["faults"] for s in proc(r)["storms"] if s["top_site"] == site(proc(r), "storm_fill")["id"]) >= '$least || {
			echo "  $m mode: storms (site faults share one_scan):"; storms_of "ostorm$m"; return 1; }
	done
	# exact mode on userfaultfd took its handlers' time out of the timeline and says so; on the
	# kernel's fault events nothing waited: nothing to take out
	$Q "$WORK/ostormuffd.json" 'proc(r)["storm_detection"]["handler_ns_removed"] > 0' || return 1
	$Q "$WORK/ostormexact.json" 'proc(r)["mechanism"] == "fault-events"' \
		'proc(r)["storm_detection"]["handler_ns_removed"] == 0' || return 1
	for m in exact uffd; do
		report ostorm$m text || return 1
		grep -Eq '^#     1\. [0-9.]+-[0-9.]+ ms, [0-9]+ faults \([0-9.]+ [kM]?/s, [0-9]+% of the time\), site #[0-9]+ storm_fill \(one_storm\.c:[0-9]+\)$' \
			"$WORK/ostorm$m.text" || {
			echo "  $m: the text report does not show the storm with its share and site:"
			grep -A4 'storms (' "$WORK/ostorm$m.text"
			return 1
		}
	done
	grep -q "exact mode: its handlers' .* ms taken out of the timeline" "$WORK/ostormuffd.text" &&
		! grep -q "handlers'" "$WORK/ostormexact.text" || { echo "  the handlers' time said wrongly"; return 1; }
}

t_storm_steady_allocation_none() {
	local m
	for m in fast exact; do
		RUN_ENV="PFSHIM_MODE=$m" run_both "steady$m" $T/steady || return 1
		report "steady$m" || return 1
		# 4096 pages over 2 s or more: a few percent of its time at most, on any machine
		$Q "$WORK/steady$m.json" \
			'site(proc(r), "steady_grow")["first_touch_faults"] >= 4000' \
			'proc(r)["storms"] == []' || { echo "  $m mode: storms:"; storms_of "steady$m"; return 1; }
	done
}

t_storm_fault_cost_from_the_environment() {
	run_both scost $T/one_storm || return 1
	# PFSHIM_FAULT_COST fixes the unit (a report of another machine's logs, or one to reproduce)
	PFSHIM_FAULT_COST='first=1us,cow=3us,huge=100us' "$CLI" report --format json "$WORK/scost" >"$WORK/scost.json" || return 1
	$Q "$WORK/scost.json" \
		'proc(r)["storm_detection"]["fault_cost_ns"] == {"first_touch": 1000, "cow": 3000, "huge": 100000, "source": "PFSHIM_FAULT_COST"}' \
		'proc(r)["storm_detection"]["threshold_rate"] == 100000' || return 1
	PFSHIM_FAULT_COST='first=fast' "$CLI" report --format json "$WORK/scost" >/dev/null 2>"$WORK/scost.err" || return 1
	grep -q "PFSHIM_FAULT_COST='first=fast' does not parse" "$WORK/scost.err" ||
		{ echo "  a bad PFSHIM_FAULT_COST is not said:"; cat "$WORK/scost.err"; return 1; }
}
