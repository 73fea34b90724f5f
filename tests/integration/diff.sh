# pfshim diff: two runs of one program, matched by process tree and symbolized site.

t_diff_rebuilt_program_matches_sites() {
	# the same source built twice, elsewhere and differently: other addresses, same lines
	cc -O0 -g -o "$WORK/storm_rebuilt" "$ROOT/examples/storm.c" || return 1
	run_both dstorm_a $BUILD/examples/storm || return 1
	run_both dstorm_b "$WORK/storm_rebuilt" || return 1
	diff_json dstorm dstorm_a dstorm_b || return 1
	$Q "$WORK/dstorm.json" \
		'len(r["processes"]) == 1' \
		'r["processes"][0]["only_in"] is None' \
		'site(r["processes"][0], "storm_site")["only_in"] is None' \
		'site(r["processes"][0], "storm_site")["a"]["first_touch_faults"] >= 16000' \
		'site(r["processes"][0], "storm_site")["b"]["first_touch_faults"] >= 16000' \
		'site(r["processes"][0], "quiet_site")["a"]["allocations"] == 1000' \
		'site(r["processes"][0], "quiet_site")["b"]["allocations"] == 1000' \
		'site(r["processes"][0], "quiet_site")["change"]["allocations"] == 0' \
		'site(r["processes"][0], "storm_site")["a"]["id"] != 0'
}

t_diff_fast_against_off_ranks_the_storm_first() {
	run_both dfast $BUILD/examples/storm || return 1
	RUN_ENV=PFSHIM_MODE=off run_both doff $BUILD/examples/storm || return 1
	diff_json dfo dfast doff || return 1
	$Q "$WORK/dfo.json" \
		'r["a"]["mode"] == "fast" and r["b"]["mode"] == "off"' \
		'r["processes"][0]["sites"][0]["frames"][0]["function"] == "storm_site"' \
		'site(r["processes"][0], "storm_site")["change"]["faults"] == -site(r["processes"][0], "storm_site")["a"]["first_touch_faults"]' \
		'site(r["processes"][0], "storm_site")["verdict"] == "better"' \
		'site(r["processes"][0], "storm_site")["a"]["storms"] >= 1' \
		'site(r["processes"][0], "storm_site")["b"]["storms"] == 0' \
		'r["processes"][0]["a"]["wall_ns"] > 0' \
		'r["processes"][0]["verdict"] == "better"' \
		'r["totals"]["change"]["faults"] == r["processes"][0]["change"]["faults"]' || return 1
	# the other way round it is worse, and the text names the site with file:line
	"$CLI" diff "$WORK/doff" "$WORK/dfast" >"$WORK/dof.txt" 2>&1 || return 1
	grep -Eq '^ +1 +0 +[0-9]+ +\+[0-9]+ +worse +storm_site \(storm\.c:[0-9]+\)' "$WORK/dof.txt" || {
		echo "  text diff lacks storm_site ranked first as worse:"
		head -30 "$WORK/dof.txt"
		return 1
	}
	! grep -q $'\033' "$WORK/dof.txt" || { echo "  colour in a pipe"; return 1; }
}

t_diff_matches_forked_children() {
	run_both dfork_a $T/forker || return 1
	run_both dfork_b $T/forker || return 1
	diff_json dfork dfork_a dfork_b || return 1
	$Q "$WORK/dfork.json" \
		'len(r["processes"]) == 2' \
		'all(p["only_in"] is None for p in r["processes"])' \
		'all(p["a"]["pid"] != p["b"]["pid"] for p in r["processes"])' \
		'sum(site(p, "child_site")["b"]["allocations"] for p in r["processes"] if sites(p, "child_site")) == 13' \
		'all(s["only_in"] is None for p in r["processes"] for s in p["sites"] if s["frames"] and s["frames"][0]["function"] in ("child_site", "parent_site"))'
}

t_diff_usage_and_missing_run() {
	"$CLI" diff "$WORK" >/dev/null 2>"$WORK/dusage.err"
	[ $? -eq 2 ] || { echo "  one operand should be a usage error (2)"; return 1; }
	mkdir -p "$WORK/dempty"
	run_both dsome $T/three_sites || return 1
	"$CLI" diff "$WORK/dsome" "$WORK/dnothing" >"$WORK/dmiss.txt" 2>"$WORK/dmiss.err"
	[ $? -eq 1 ] && grep -q "dnothing" "$WORK/dmiss.err" || {
		echo "  a missing run should exit 1 naming it:"
		cat "$WORK/dmiss.err"
		return 1
	}
	# a site only in A is listed, as gone
	grep -q 'gone' "$WORK/dmiss.txt" || { echo "  sites of A not shown as gone:"; head -20 "$WORK/dmiss.txt"; return 1; }
}

t_diff_run_against_itself_changes_nothing() {
	run_both dself $T/fork_threads || return 1
	diff_json dselfd dself dself || return 1
	$Q "$WORK/dselfd.json" \
		'len(r["processes"]) == r["a"]["processes"] == r["b"]["processes"] >= 2' \
		'all(p["only_in"] is None and p["verdict"] == "same" and p["wall_ns_change"] == 0 for p in r["processes"])' \
		'all(s["only_in"] is None and set(s["change"].values()) == {0} and s["a"]["id"] == s["b"]["id"] for p in r["processes"] for s in p["sites"])' \
		'set(r["totals"]["change"].values()) == {0}'
}

# A site= rule on one side only: the text says that side paid its symbol tables at start, so that
# a longer wall time is not read as the rule's doing; nothing is said when both sides ran alike.
t_diff_says_which_side_ran_site_rules() {
	run_both dplain $BUILD/examples/storm || return 1
	(export PFSHIM_POLICY='populate if site=storm_site' && run_both dpol $BUILD/examples/storm) || return 1
	"$CLI" diff "$WORK/dplain" "$WORK/dpol" >"$WORK/dpp.txt" 2>&1 || return 1
	grep -q '^#     (only B ran site= rules' "$WORK/dpp.txt" || {
		echo "  not said that B ran site= rules:"; sed -n 1,20p "$WORK/dpp.txt"; return 1; }
	"$CLI" diff "$WORK/dpol" "$WORK/dpol" >"$WORK/dpp2.txt" 2>&1 || return 1
	! grep -q 'ran site= rules' "$WORK/dpp2.txt" || { echo "  said of two runs alike"; return 1; }
}
