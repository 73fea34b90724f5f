# The analyzer as a program: damaged logs, and the progress line for long logs.

# genlog_build: tools/genlog.c (synthetic logs, as bench/analyzer.sh uses) into $WORK/genlog
genlog_build() {
	[ -x "$WORK/genlog" ] || cc -O2 -std=gnu11 -I"$ROOT/include" -o "$WORK/genlog" "$ROOT/tools/genlog.c"
}

# Mutants of a real log and of a many-block one: truncations, flipped bytes, insertions.  The real
# binary never dies by a signal; a failure names the file and offset.  PFS_MUTANTS of each kind for
# the real log (5/12 as many for the long one): a sample of 8 in make check, 60 in make fuzz.
t_analyzer_survives_mutated_logs() {
	local n=${PFS_MUTANTS:-8}
	run_both mutant $BUILD/examples/storm || return 1
	genlog_build || return 1
	"$WORK/genlog" "$WORK/mutant-many.pfslog" 3000 50 200 || return 1
	mkdir -p "$WORK/mutants"
	$PY "$ROOT/tests/lib/mutate_logs.py" "$CLI" "$WORK/mutants" "$n" "$WORK"/mutant/*.pfslog >"$WORK/mutants.out" &&
		$PY "$ROOT/tests/lib/mutate_logs.py" "$CLI" "$WORK/mutants" $(((n * 5 + 11) / 12)) "$WORK/mutant-many.pfslog" \
			>>"$WORK/mutants.out" || {
		cat "$WORK/mutants.out"
		return 1
	}
}

# A long log: a progress line on a terminal (stderr), erased; nothing of it in a pipe.
t_analyzer_progress_line_only_on_a_terminal() {
	genlog_build || return 1
	# 2 M events, 78 MiB: above the size that shows the line at once
	"$WORK/genlog" "$WORK/long.pfslog" 2000000 || return 1
	"$CLI" report "$WORK/long.pfslog" >"$WORK/long.text" 2>"$WORK/long.err" || return 1
	[ ! -s "$WORK/long.err" ] || { echo "  stderr in a pipe:"; od -c "$WORK/long.err" | head -3; return 1; }
	script -qec "$CLI report $WORK/long.pfslog >/dev/null" /dev/null >"$WORK/long.tty" 2>&1 || return 1
	grep -q $'\rpfshim: reading long.pfslog: *[0-9]*%' "$WORK/long.tty" &&
		tail -c 4 "$WORK/long.tty" | grep -q $'\r\033\\[K' || {
		echo "  no progress line (or not erased) on a terminal:"; od -c "$WORK/long.tty" | tail -4; return 1; }
	rm -f "$WORK/long.pfslog"
}
