# The HTML report as a browser shows it: headless Chromium with no network.

# html_dom NAME URL-SUFFIX: the document after the page's script ran, into $WORK/NAME.dom
html_dom() {
	# a proxy nobody answers: whatever the page tried to fetch would fail (it has nothing to load anyway)
	HOME=$WORK timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
		--no-first-run --proxy-server=127.0.0.1:9 --dump-dom "file://$WORK/$1.html$2" \
		>"$WORK/$1.dom" 2>"$WORK/chromium.log"
	[ -s "$WORK/$1.dom" ] || { echo "  no document:"; tail -5 "$WORK/chromium.log"; return 1; }
}

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
	html_dom htmlrun "" || return 1
	HOME=$WORK timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
		--no-first-run --proxy-server=127.0.0.1:9 --hide-scrollbars --window-size=1000,3000 \
		--screenshot="$WORK/htmlrun.png" "file://$WORK/htmlrun.html" >"$WORK/chromium.log" 2>&1
	[ -s "$WORK/htmlrun.png" ] || { echo "  no screenshot:"; tail -5 "$WORK/chromium.log"; return 1; }
	$PY "$ROOT/tests/lib/htmlcheck.py" "$WORK/htmlrun.html" "$WORK/htmlrun.dom" top "$label" "$WORK/htmlrun.png" \
		>"$WORK/htmlrun.check" || { cat "$WORK/htmlrun.check"; return 1; }
	# sorting: the address says which column, the script sorts (a number column up, a text column down)
	local s
	for s in bytes-asc site-desc; do
		html_dom htmlrun "#sort=$s" || return 1
		$PY "$ROOT/tests/lib/htmlcheck.py" "$WORK/htmlrun.html" "$WORK/htmlrun.dom" sorted ${s%-*} ${s#*-} \
			>"$WORK/htmlrun.check" || { cat "$WORK/htmlrun.check"; return 1; }
	done
}
