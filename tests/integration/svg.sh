# What a person sees: the SVG as Chromium draws it, the text report's warnings, colour.

# tool_ready CMD PACKAGE: CMD, installed from Debian's PACKAGE when missing (as root); else a loud
# skip (1): the tests that need it say so and pass no judgement.
tool_ready() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "  SKIP: $1 is not installed and installing it needs root (apt-get install $2)"
		return 1
	fi
	echo "  installing Debian's $2 for this test (apt-get)"
	{ DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2"; } \
		>"$WORK/apt-$2.log" 2>&1
	command -v "$1" >/dev/null 2>&1 || {
		echo "  SKIP: $2 could not be installed:"
		tail -3 "$WORK/apt-$2.log"
		return 1
	}
}

# chromium_ready: the chromium binary (tool_ready).
chromium_ready() {
	tool_ready chromium chromium
}

t_svg_renders_in_headless_chromium() {
	run_both svgshot $BUILD/examples/storm || return 1
	report svgshot svg || return 1
	# a skip is loud, and only where chromium cannot be had at all
	chromium_ready || return 0
	rm -f "$WORK/svgshot.png"
	# as root chromium needs --no-sandbox; HOME: its profile goes to the scratch directory
	HOME=$WORK timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
		--window-size=1000,700 --screenshot="$WORK/svgshot.png" "file://$WORK/svgshot.svg" \
		>"$WORK/chromium.log" 2>&1
	[ -s "$WORK/svgshot.png" ] || { echo "  no screenshot:"; tail -5 "$WORK/chromium.log"; return 1; }
	python3 "$ROOT/tests/lib/svgshot.py" "$WORK/svgshot.svg" "$WORK/svgshot.png" >"$WORK/svgshot.check" || {
		cat "$WORK/svgshot.check"
		return 1
	}
}

# The warnings section is there when the log gives a reason, and names it.
t_text_report_warnings_section() {
	# lost records: a log cut inside a record
	run_both warncut $T/three_sites || return 1
	local log
	log=$(ls "$WORK"/warncut/*.pfslog)
	head -c 1000 "$log" >"$log.cut" && mv "$log.cut" "$log"
	"$CLI" report "$WORK/warncut" >"$WORK/warncut.text" 2>/dev/null
	[ $? -eq 1 ] || { echo "  a cut log should exit 1"; return 1; }
	grep -q '^# Warnings (' "$WORK/warncut.text" &&
		grep -Eq "^#   .*pfslog: offset [0-9]+: .*truncated" "$WORK/warncut.text" &&
		grep -q "did not end normally" "$WORK/warncut.text" || {
		echo "  no warnings section naming the cut:"; tail -8 "$WORK/warncut.text"; return 1; }
	# a whole log: no warnings section
	run_both warnnone $T/three_sites || return 1
	report warnnone text || return 1
	! grep -q '^# Warnings' "$WORK/warnnone.text" || {
		echo "  a warnings section for a clean run:"; grep -A3 '^# Warnings' "$WORK/warnnone.text"; return 1; }
	# huge pages the shim left untracked at a fork (where the machine gives them)
	run_both warnthp $T/thp_fork || return 1
	if grep -q 'yes' "$WORK/warnthp.native"; then
		report warnthp text || return 1
		grep -Eq '^#   .*the shim said: fork: copy-on-write of .* transparent huge pages is not counted' \
			"$WORK/warnthp.text" || {
			echo "  the huge-page warning is not in the report:"; tail -5 "$WORK/warnthp.text"; return 1; }
	fi
}

# ANSI colour on a terminal only (script(1) gives the report a pseudo-terminal).
t_text_colour_only_on_a_terminal() {
	run_both colour $T/three_sites || return 1
	report colour text || return 1
	! grep -q $'\033' "$WORK/colour.text" || { echo "  colour in a file"; return 1; }
	# PAGER=cat: a terminal would get less, waiting for keys nobody presses
	PAGER=cat TERM=xterm script -qec "$CLI report $WORK/colour" /dev/null >"$WORK/colour.tty" 2>&1
	grep -q $'\033\\[1m# pfshim report' "$WORK/colour.tty" || {
		echo "  no colour on a terminal:"; head -3 "$WORK/colour.tty" | od -c | head -5; return 1; }
	PAGER=cat TERM=xterm NO_COLOR=1 script -qec "$CLI report $WORK/colour" /dev/null >"$WORK/colour.nc" 2>&1
	# colour is SGR (ESC [ ... m); the progress line's erase (ESC [ K) may come on a slow machine
	! grep -Eq $'\033\\[[0-9;]*m' "$WORK/colour.nc" || { echo "  colour despite NO_COLOR"; return 1; }
}
