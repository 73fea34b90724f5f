# The HTML report as a browser shows it: headless Chromium with no network.

t_html_report_in_headless_chromium() {
	run_both htmlrun sh -c "$BUILD/examples/storm; $T/touch_fork >/dev/null" || return 1
	report htmlrun html || return 1
	report htmlrun json || return 1
	need chromium chromium
	# the run's top site, as the JSON names it
	local label
	label=$($PY -c '
import json, sys
r = json.load(open(sys.argv[1])); t = r["top_sites"][0]
p = [p for p in r["processes"] if p["pid"] == t["pid"] and p["exec_gen"] == t["exec_gen"]][0]
print([s for s in p["sites"] if s["id"] == t["id"]][0]["frames"][0]["function"])' "$WORK/htmlrun.json")
	[ "$label" = storm_site ] || { echo "  the JSON's top site is $label"; return 1; }
	# the document after the page's script ran, as loaded plainly and with a sort in the address, and
	# a screenshot: one Chromium for the four pages (a proxy nobody answers: whatever the page tried
	# to fetch would fail; it has nothing to load anyway)
	local u="file://$WORK/htmlrun.html" s
	HOME=$WORK timeout 120 $PY "$ROOT/tests/lib/chromium_pages.py" "$WORK/chromium.log" dom "$u" "$WORK/htmlrun.dom" \
		dom "$u#sort=bytes-asc" "$WORK/htmlrun-bytes-asc.dom" dom "$u#sort=site-desc" "$WORK/htmlrun-site-desc.dom" \
		shot 1000x3000 "$u" "$WORK/htmlrun.png" || return 1
	$PY "$ROOT/tests/lib/htmlcheck.py" "$WORK/htmlrun.html" "$WORK/htmlrun.dom" top "$label" "$WORK/htmlrun.png" \
		>"$WORK/htmlrun.check" || { cat "$WORK/htmlrun.check"; return 1; }
	# sorting: the address says which column, the script sorts (a number column up, a text column down)
	for s in bytes-asc site-desc; do
		$PY "$ROOT/tests/lib/htmlcheck.py" "$WORK/htmlrun.html" "$WORK/htmlrun-$s.dom" sorted ${s%-*} ${s#*-} \
			>"$WORK/htmlrun.check" || { cat "$WORK/htmlrun.check"; return 1; }
	done
}
