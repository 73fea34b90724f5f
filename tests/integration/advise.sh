# The advisor (issue 10): per-site evidence in the reports, `pfshim advise DIR` on programs built
# for each rule (tests/preload/adv_*.c), and `advise --verify` measuring a policy for real.

# The advice for the site whose function is $1, from an `advise --format json` document.
ADV='(lambda f: [a for a in r["advice"] if a["function"] == f][0])'

# advise NAME: `pfshim advise` of $WORK/NAME as JSON ($WORK/NAME.adv.json) and text ($WORK/NAME.adv)
advise() {
	"$CLI" advise --format json "$WORK/$1" >"$WORK/$1.adv.json" 2>"$WORK/$1.adv.err" &&
		"$CLI" advise "$WORK/$1" >"$WORK/$1.adv" 2>>"$WORK/$1.adv.err" ||
		{ echo "  pfshim advise failed:"; head -5 "$WORK/$1.adv.err"; return 1; }
}

# burst_advice NAME FUNCTION: what `advise` must say of a dense site at FUNCTION in $WORK/NAME,
# from the run's own measurements: where it was touched in a burst (the advisor's 10000 pages/s,
# docs/advisor.md) WANT_ADVICE is '== "populate"' and WANT_RULE the rule: populate, with hugepage
# first where the block lived past the advisor's 1 s "long-lived" and THP is "madvise"; else (a
# loaded machine touches slowly, and a single-threaded program's pages are timed at its next
# allocator call) WANT_ADVICE is '!= "populate"' and WANT_RULE empty.
burst_advice() {
	local ev="$ADV('$2')['evidence']" rate
	rate=$($Q "$WORK/$1.adv.json" "=round(max($ev['storm_rate'], $ev['touch_rate']))") || return 1
	WANT_ADVICE='== "populate"' WANT_RULE=""
	if [ "$rate" -ge 10000 ]; then
		WANT_RULE=$($Q "$WORK/$1.adv.json" "=('hugepage,populate' if $ev['lifetime_ns'] >= 1e9 and '$(thp_mode)' == 'madvise' else 'populate') + ' if site=$2'") || return 1
	else
		WANT_ADVICE='!= "populate"'
	fi
	echo "  found: $2 touched at $rate pages/s, THP $(thp_mode): ${WANT_RULE:-not a burst}"
}

t_advise_dense_burst_populate_that_site_only() {
	run_both advburst $T/adv_burst || return 1
	report advburst || return 1
	# the evidence in the report: 32 MiB asked, 32 MiB touched (the first page may hold malloc's
	# header, present before the program touched it), in a burst, freed before the end
	$Q "$WORK/advburst.json" \
		'site(proc(r), "burst_site")["evidence"]["requested_bytes"] == 32 << 20' \
		'site(proc(r), "burst_site")["evidence"]["touched_bytes"] >= (32 << 20) - 4096' \
		'site(proc(r), "burst_site")["evidence"]["touched_share"] > 0.99' \
		'site(proc(r), "burst_site")["evidence"]["freed_allocations"] == 1' \
		'site(proc(r), "burst_site")["evidence"]["touch_rate"] > site(proc(r), "slow_site")["evidence"]["touch_rate"]' \
		'site(proc(r), "slow_site")["evidence"]["touch_rate"] < 10000' \
		'site(proc(r), "slow_site")["evidence"]["touch_spread_ns"]["max"] > 200e6' || return 1
	report advburst text || return 1
	grep -q '= allocated 32.0 MiB, touched 32.0 MiB (100%' "$WORK/advburst.text" ||
		{ echo "  no evidence line in the text report"; return 1; }
	advise advburst || return 1
	# the burst block lives while slow_site runs: about 0.5 s, more on a loaded machine
	burst_advice advburst burst_site || return 1
	$Q "$WORK/advburst.adv.json" \
		"$ADV(\"burst_site\")[\"advice\"] $WANT_ADVICE" \
		"$ADV(\"slow_site\")[\"advice\"] == \"fine\"" \
		"$ADV(\"slow_site\")[\"rule\"] is None" || return 1
	[ -n "$WANT_RULE" ] || return 0
	$Q "$WORK/advburst.adv.json" "$ADV(\"burst_site\")[\"rule\"] == \"$WANT_RULE\"" \
		"r[\"policy\"] == \"$WANT_RULE\"" || return 1
	grep -qx "PFSHIM_POLICY='$WANT_RULE'" "$WORK/advburst.adv" ||
		{ echo "  no policy line:"; tail -3 "$WORK/advburst.adv"; return 1; }
}

t_advise_storm_example_populate() {
	run_both advstorm $BUILD/examples/storm || return 1
	advise advstorm || return 1
	burst_advice advstorm storm_site || return 1
	$Q "$WORK/advstorm.adv.json" "$ADV(\"storm_site\")[\"advice\"] $WANT_ADVICE" || return 1
	[ -z "$WANT_RULE" ] || $Q "$WORK/advstorm.adv.json" "r[\"policy\"] == \"$WANT_RULE\""
}

t_advise_sparse_names_the_waste() {
	run_both advsparse $T/adv_sparse || return 1
	advise advsparse || return 1
	# 64 MiB asked, one page of each MiB touched: populating would waste 64 MiB - 64 pages (63
	# when the first page, holding malloc's header, was present before the program touched it)
	$Q "$WORK/advsparse.adv.json" \
		"$ADV(\"sparse_site\")[\"advice\"] == \"sparse\"" \
		"$ADV(\"sparse_site\")[\"waste_if_populated_bytes\"] in ((64 << 20) - 64 * 4096, (64 << 20) - 63 * 4096)" \
		"\"populate\" not in r[\"policy\"]" || return 1
	grep -q 'do not populate it: that would make 63.8 MiB resident that nothing touches' \
		"$WORK/advsparse.adv" || { echo "  the waste is not named:"; cat "$WORK/advsparse.adv"; return 1; }
}

t_advise_file_read_in_order() {
	run_both advfile $T/adv_file "$WORK/advfile.data" || return 1
	advise advfile || return 1
	# fast mode sees a file mapping's pages as they are mapped in (fault-around maps 16 at a time)
	$Q "$WORK/advfile.adv.json" \
		"$ADV(\"file_site\")[\"kind\"] == \"mmap-file\"" \
		"$ADV(\"file_site\")[\"evidence\"][\"touched_share\"] > 0.99" \
		"$ADV(\"file_site\")[\"advice\"] == \"file-readahead\"" \
		"$ADV(\"file_site\")[\"rule\"] == \"willneed if site=file_site,kind=mmap-file\""
}

t_advise_cow_after_fork() {
	run_both advcow $T/adv_cow || return 1
	advise advcow || return 1
	# the child rewrites 16 MiB it inherited: 4096 copies in one fork, a code change to advise
	$Q "$WORK/advcow.adv.json" \
		"$ADV(\"cow_site\")[\"advice\"] == \"fork\"" \
		"$ADV(\"cow_site\")[\"rule\"] is None" \
		"$ADV(\"cow_site\")[\"evidence\"][\"cow_pages\"] == 4096" \
		"$ADV(\"cow_site\")[\"evidence\"][\"cow_per_fork\"] == 4096" \
		"\"in the child after fork\" in $ADV(\"cow_site\")[\"expected\"]" \
		'r["policy"] == ""' || return 1
	report advcow || return 1
	$Q "$WORK/advcow.json" 'any(s["evidence"]["cow_per_fork"] == 4096 for p in r["processes"] for s in p["sites"])'
}

# The measurement of a rule, given (-p): whether the advice is populate depends on how fast a loaded
# machine touched the storm (t_advise_storm_example_populate); the advice itself is what --verify
# measures in t_advise_verify_says_when_it_did_not_help and t_advise_verify_nothing_to_verify.
t_advise_verify_storm() {
	(cd "$WORK" && "$CLI" advise --verify --format json -n 2 -p 'populate if site=storm_site' -- $BUILD/examples/storm \
		>"$WORK/verify.json" 2>"$WORK/verify.err") || { echo "  advise --verify failed:"; cat "$WORK/verify.err"; return 1; }
	# the storm's 16383 first touches become prefaulted pages; the output is the same
	S='[s for s in r["sites"] if s["function"] == "storm_site"][0]'
	$Q "$WORK/verify.json" \
		'r["policy"] == "populate if site=storm_site"' \
		"$S[\"without\"][\"first_touch_faults\"] >= 16383" \
		"$S[\"with\"][\"first_touch_faults\"] <= 16" \
		"$S[\"with\"][\"prefaulted_pages\"] >= 16383" \
		"$S[\"helped\"] is True" \
		'r["total"]["with"]["first_touch_faults"] < r["total"]["without"]["first_touch_faults"] / 10' \
		'r["output_unchanged"] is True' \
		'r["status_unchanged"] is True' \
		'r["exit_status"] == 0'
}

t_advise_verify_says_when_it_did_not_help() {
	# willneed on a file just written (all in the page cache): the faults that map it stay
	(cd "$WORK" && "$CLI" advise --verify -n 1 -- $T/adv_file "$WORK/advnohelp.data" \
		>"$WORK/nohelp.txt" 2>"$WORK/nohelp.err") || { cat "$WORK/nohelp.err"; return 1; }
	grep -q '=> did not help: first-touch faults 4096 -> 4096' "$WORK/nohelp.txt" ||
		{ echo "  no 'did not help':"; cat "$WORK/nohelp.txt"; return 1; }
	grep -q '^output: unchanged in all 2 runs' "$WORK/nohelp.txt"
}

t_advise_usage() {
	"$CLI" advise >/dev/null 2>&1; [ $? = 2 ] || { echo "  no operand: not 2"; return 1; }
	"$CLI" advise --runs 3 "$WORK" >/dev/null 2>&1; [ $? = 2 ] || { echo "  --runs without --verify"; return 1; }
	"$CLI" advise --format xml "$WORK" >/dev/null 2>&1; [ $? = 2 ] || { echo "  bad format"; return 1; }
	"$CLI" advise "$WORK/no-such-dir" >/dev/null 2>&1; [ $? = 1 ] || { echo "  missing dir: not 1"; return 1; }
	return 0
}

t_advise_large_long_lived_hugepage() {
	run_both advhuge $T/adv_huge || return 1
	advise advhuge || return 1
	# hugepage where the advice does something: THP "madvise" (under "always" the kernel uses huge
	# pages already, under "never" the advice does nothing). Not populate: this single-threaded
	# program scans only at its allocator calls, so fast mode finds the 4096 pages at the munmap,
	# 1.2 s later, and cannot tell a burst; the advice says so.
	local want=None
	[ "$(thp_mode)" = madvise ] &&
		want='"hugepage if site=huge_site"'
	echo "  found: THP $(thp_mode): expect the rule $want"
	$Q "$WORK/advhuge.adv.json" \
		"$ADV(\"huge_site\")[\"evidence\"][\"lifetime_ns\"] > 1e9" \
		"$ADV(\"huge_site\")[\"evidence\"][\"coarse_times\"] is True" \
		"\"--mode exact\" in $ADV(\"huge_site\")[\"reason\"]" \
		"$ADV(\"huge_site\")[\"rule\"] == $want"
}

t_advise_exact_mode_times() {
	RUN_ENV="PFSHIM_MODE=exact" run_both advexact $T/adv_burst || return 1
	report advexact || return 1
	# exact mode: the faults' own times (gathered per 100 us), so the burst that follows malloc at
	# once is timed at its first fault, where fast mode says "before the next scan".  Exact mode makes
	# each fault wait for its handler, more so on a loaded machine: the bounds come from the run.
	# The first touch comes within a tenth of the burst's own span after the allocation; the burst is
	# touched faster than the slow site (whose every page waits 400 us more).
	local B='site(proc(r), "burst_site")["evidence"]' S='site(proc(r), "slow_site")["evidence"]'
	$Q "$WORK/advexact.json" \
		'r["mode"] == "exact"' \
		"$B[\"exact_times\"] is True" \
		"$B[\"coarse_times\"] is False" \
		"$B[\"first_touch_after_ns\"][\"max\"] < $B[\"touch_spread_ns\"][\"min\"] / 10" \
		"max($B[\"storm_rate\"], $B[\"touch_rate\"]) > $S[\"touch_rate\"]" \
		"$S[\"touch_rate\"] < 10000" || return 1
	# populate where the run measured a burst
	advise advexact || return 1
	burst_advice advexact burst_site || return 1
	$Q "$WORK/advexact.adv.json" \
		"$ADV(\"burst_site\")[\"advice\"] $WANT_ADVICE" \
		"$ADV(\"slow_site\")[\"advice\"] == \"fine\""
}

t_advise_verify_nothing_to_verify() {
	# copy-on-write advice is a code change: nothing for a policy run to measure; the advice is shown
	(cd "$WORK" && "$CLI" advise --verify --format json -n 1 -- $T/adv_cow >"$WORK/vcow.json" \
		2>"$WORK/vcow.err") || { cat "$WORK/vcow.err"; return 1; }
	grep -q 'nothing to verify' "$WORK/vcow.err" || { echo "  not said"; return 1; }
	$Q "$WORK/vcow.json" 'r["policy"] == ""' "$ADV(\"cow_site\")[\"advice\"] == \"fork\""
}

t_advise_prefault_example_and_a_policy_run() {
	# examples/prefault: table_site is a burst (populate); populated_site maps with MAP_POPULATE,
	# resident before any touch, which must not read as "64 MiB allocated, nothing touched"
	run_both advpre $BUILD/examples/prefault || return 1
	advise advpre || return 1
	burst_advice advpre table_site || return 1
	$Q "$WORK/advpre.adv.json" \
		"$ADV(\"table_site\")[\"advice\"] $WANT_ADVICE" \
		'all(a["advice"] != "sparse" for a in r["advice"])' || return 1
	[ -z "$WANT_RULE" ] || $Q "$WORK/advpre.adv.json" "r[\"policy\"] == \"$WANT_RULE\"" || return 1
	# the same program under that policy: its pages were prefaulted, not sparse; nothing left to advise
	(export PFSHIM_POLICY='populate if site=table_site' && run_both advpre2 $BUILD/examples/prefault) || return 1
	advise advpre2 || return 1
	$Q "$WORK/advpre2.adv.json" 'all(a["advice"] != "sparse" for a in r["advice"])' 'r["policy"] == ""'
}
