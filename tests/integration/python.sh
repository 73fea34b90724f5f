# Python programs (issue 22): the Python line that allocated, beside the C stack.  Debian's
# /usr/bin/python3 (3.11) and its numpy (python3-numpy, tools/deps.sh); the scripts are in
# tests/python/.  Other CPython versions are run when the machine has them (python3.N in PATH).

PY=/usr/bin/python3
PYDIR=$ROOT/tests/python
# the report's sites labelled by a function
PYSITES='(lambda p, fn: [s for s in p["sites"] if (s["label"] or {}).get("function") == fn])'
# a site's Python frames as (function, line)
PYFRAMES='(lambda s: [(f["function"], f["line"]) for f in s["frames"] if f.get("python")])'
# Python frames stand where the eval frames stood: C frames on both sides, the outermost one C
INTERLEAVED='(lambda s: not s["frames"][0].get("python") and not s["frames"][-1].get("python") and any(f.get("python") for f in s["frames"]))'

type skip >/dev/null 2>&1 || skip() { echo "  SKIP: $*"; }

# pyline FILE MARKER: the line of tests/python/FILE that ends with "# MARKER"
pyline() {
	grep -n "# $2\$" "$PYDIR/$1" | cut -d: -f1
}

have_numpy() {
	"$PY" -c 'import numpy' 2>/dev/null || { echo "  $PY lacks numpy (python3-numpy, installed by tools/deps.sh)"; return 1; }
}

# py_nothp NAME ARGS...: `python3 ARGS` natively and under the shim, transparent huge pages off
# for both (tests/preload/nothp.c): faults are base pages, sites rank the same on every machine
py_nothp() {
	local name=$1
	shift
	rm -rf "${WORK:?}/$name"
	(cd "$WORK" && timeout 120 $T/nothp "$PY" "$@" >"$WORK/$name.native" 2>/dev/null) || return 1
	(cd "$WORK" && PFSHIM_OUT="$WORK/$name" timeout 120 $T/nothp env LD_PRELOAD="$LIB" "$PY" "$@" \
		>"$WORK/$name.out" 2>"$WORK/$name.err") || { echo "  failed under the shim:"; tail -3 "$WORK/$name.err"; return 1; }
	cmp -s "$WORK/$name.native" "$WORK/$name.out" || { echo "  output differs under the shim"; return 1; }
}

# numpy's array, allocated in load_matrix and filled at once: whatever the machine does with huge
# pages, the array's site is named by the script's line, its Python frames in place among C frames.
t_python_numpy_site_is_the_script_line() {
	have_numpy || return 1
	local load main call
	load=$(pyline np1.py LOAD_LINE) main=$(pyline np1.py MAIN_LINE) call=$(grep -n '^main()' "$PYDIR/np1.py" | cut -d: -f1)
	run_both np1 "$PY" "$PYDIR/np1.py" || return 1
	report np1 || return 1
	$Q "$WORK/np1.json" \
		"len($PYSITES(proc(r), \"load_matrix\")) == 1" \
		"$PYSITES(proc(r), \"load_matrix\")[0][\"label\"] == {\"function\": \"load_matrix\", \"file\": \"np1.py\", \"line\": $load, \"module\": None}" \
		"$PYSITES(proc(r), \"load_matrix\")[0][\"bytes_allocated\"] == 4000 * 4000 * 8" \
		"$PYFRAMES($PYSITES(proc(r), \"load_matrix\")[0]) == [(\"load_matrix\", $load), (\"main\", $main), (\"<module>\", $call)]" \
		"$INTERLEAVED($PYSITES(proc(r), \"load_matrix\")[0])" \
		"all(f[\"address\"] is None and f[\"module\"] is None and f[\"source_path\"].endswith(\"/np1.py\") for f in $PYSITES(proc(r), \"load_matrix\")[0][\"frames\"] if f.get(\"python\"))"
}

# The done-when of issue 22: the top site is load_matrix (np1.py:LINE) in every format.
t_python_numpy_top_site_every_format() {
	have_numpy || return 1
	local load name
	load=$(pyline np1.py LOAD_LINE)
	name="load_matrix (np1.py:$load)"
	py_nothp np1top "$PYDIR/np1.py" || return 1
	report np1top || return 1
	$Q "$WORK/np1top.json" \
		"procs(r, \"np1.py\")[0][\"sites\"][0][\"label\"][\"function\"] == \"load_matrix\"" \
		"procs(r, \"np1.py\")[0][\"sites\"][0][\"label\"][\"line\"] == $load" \
		"procs(r, \"np1.py\")[0][\"sites\"][0][\"first_touch_pages\"] >= 31000" || return 1
	report np1top text || return 1
	grep -q "#1  $name" "$WORK/np1top.text" || { echo "  text: no '#1  $name'"; grep -m3 '#1 ' "$WORK/np1top.text"; return 1; }
	grep -q "main (np1.py:[0-9]*) \[python\]" "$WORK/np1top.text" || { echo "  text: no Python frame"; return 1; }
	report np1top folded || return 1
	grep -q ";main;load_matrix;" "$WORK/np1top.folded" || { echo "  folded: no main;load_matrix"; return 1; }
	"$CLI" report --format pprof -o "$WORK/np1top.pprof" "$WORK/np1top" 2>/dev/null || { echo "  pprof failed"; return 1; }
	$PY - "$WORK/np1top.pprof" "$name" <<'EOF' || return 1
import gzip, sys
b = gzip.decompress(open(sys.argv[1], "rb").read())
assert sys.argv[2].encode() in b, "pprof: the site's label"
assert b"np1.py" in b and b"load_matrix" in b, "pprof: the Python frame"
EOF
	# the HTML report: the first row of its site table, its Python frames marked
	"$CLI" report --format html -o "$WORK/np1top.html" "$WORK/np1top" 2>/dev/null || { echo "  html failed"; return 1; }
	$PY - "$WORK/np1top.html" "$load" <<'EOF' || return 1
import re, sys
h = open(sys.argv[1]).read()
rows = re.findall(r'<summary><span class="label">([^<]*)</span> <span class="where">([^<]*)</span></summary>', h)
assert rows and rows[0] == ("load_matrix", "np1.py:" + sys.argv[2]), ("html: first site", rows[:2])
assert re.search(r'<span class="fn">main</span> <span class="where">np1.py:\d+</span> <span class="muted">\[python\]', h), "html: Python frame"
EOF
}

# pfshim record --policy 'populate if site=load_matrix': the array is prefaulted, the diff shows it;
# site= also takes FILE:LINE, and a rule naming no Python function prefaults nothing (one run: the
# rule that names nothing first, then FILE:LINE; every prefaulted page is the array's).
t_python_policy_on_python_names() {
	have_numpy || return 1
	local load d
	load=$(pyline np1.py LOAD_LINE)
	local DIFFSITE='(lambda r: [s for s in r["processes"][0]["sites"] if s["function"] == "load_matrix"])'
	for d in pbase ppop pline; do rm -rf "${WORK:?}/$d"; done
	(cd "$WORK" && "$CLI" record -o pbase -- "$PY" "$PYDIR/np1.py" >pbase.out 2>pbase.err &&
		"$CLI" record -o ppop --policy 'populate if site=load_matrix' -- "$PY" "$PYDIR/np1.py" >ppop.out 2>ppop.err &&
		"$CLI" record -o pline --policy "populate if site=no_such_function; populate if site=np1.py:$load" \
			-- "$PY" "$PYDIR/np1.py" >pline.out 2>pline.err) ||
		{ echo "  pfshim record failed"; tail -3 "$WORK"/p*.err; return 1; }
	"$CLI" diff --format json "$WORK/pbase" "$WORK/ppop" >"$WORK/pdiff.json" 2>"$WORK/pdiff.err" || { echo "  diff failed"; return 1; }
	# the diff's sites are named by their labels' functions
	$Q "$WORK/pdiff.json" \
		"len($DIFFSITE(r)) == 1" \
		"$DIFFSITE(r)[0][\"a\"][\"prefaulted_pages\"] == 0" \
		"$DIFFSITE(r)[0][\"b\"][\"prefaulted_pages\"] >= 31000" \
		"$DIFFSITE(r)[0][\"b\"][\"first_touch_faults\"] < $DIFFSITE(r)[0][\"a\"][\"first_touch_faults\"]" \
		"$DIFFSITE(r)[0][\"verdict\"] == \"better\"" || return 1
	"$CLI" diff "$WORK/pbase" "$WORK/ppop" >"$WORK/pdiff.txt" 2>&1
	grep -q "load_matrix (np1.py:$load)" "$WORK/pdiff.txt" && grep -q "populate if site=load_matrix" "$WORK/pdiff.txt" ||
		{ echo "  the text diff does not name the site and its rule"; head -20 "$WORK/pdiff.txt"; return 1; }
	report pline || return 1
	$Q "$WORK/pline.json" \
		"$PYSITES(proc(r), \"load_matrix\")[0][\"prefaulted_pages\"] >= 31000" \
		"sum(s[\"prefaulted_pages\"] for s in proc(r)[\"sites\"]) == $PYSITES(proc(r), \"load_matrix\")[0][\"prefaulted_pages\"]"
}

# py_threads NAME RUNS [VAR=VALUE...]: tests/python/threads.py RUNS times under the shim (with those
# variables), each run's output as the native run's; the last run's logs in $WORK/NAME
py_threads() {
	local name=$1 runs=$2 lib=$WORK/$1-nogil.so i
	shift 2
	cc -O1 -g -shared -fPIC -o "$lib" "$PYDIR/nogil.c" || return 1
	"$PY" "$PYDIR/threads.py" "$lib" >"$WORK/$name.native" || return 1
	for i in $(seq "$runs"); do
		rm -rf "${WORK:?}/$name"
		env "$@" PFSHIM_QUIET=1 PFSHIM_OUT="$WORK/$name" timeout 60 env LD_PRELOAD=$LIB "$PY" "$PYDIR/threads.py" "$lib" \
			>"$WORK/$name.out" 2>"$WORK/$name.err" || { echo "  run $i of $runs: exit $?"; tail -3 "$WORK/$name.err"; return 1; }
		cmp -s "$WORK/$name.native" "$WORK/$name.out" || { echo "  run $i of $runs: output differs"; return 1; }
	done
	report "$name"
}

# Four threads allocating at once, the GIL passed every 50 us, one of them in C without the GIL
# (ctypes): the program runs unchanged every time (PFS_PY_RUNS times, 10 by default; `make fuzz`
# runs 500), the GIL holders' sites carry their Python lines, the C thread's none (left out).
t_python_threads_and_a_c_thread_without_the_gil() {
	local lists gen churn
	lists=$(pyline threads.py LISTS_LINE) gen=$(pyline threads.py GEN_LINE)
	churn=$(grep -n 'CHURN_LINE' "$PYDIR/nogil.c" | cut -d: -f1)
	py_threads pythr "${PFS_PY_RUNS:-10}" || return 1
	$Q "$WORK/pythr.json" \
		"$PYSITES(proc(r), \"make_lists\")[0][\"label\"][\"line\"] == $lists" \
		"$PYFRAMES($PYSITES(proc(r), \"make_lists\")[0])[:2] == [(\"make_lists\", $lists), (\"run\", $PYFRAMES($PYSITES(proc(r), \"make_lists\")[0])[1][1])]" \
		"$PYFRAMES($PYSITES(proc(r), \"chunks\")[0])[0] == (\"chunks\", $gen)" \
		"[fn for fn, _ in $PYFRAMES($PYSITES(proc(r), \"chunks\")[0])][1:3] == [\"from_generator.<locals>.<genexpr>\", \"from_generator\"]" \
		"$PYSITES(proc(r), \"Table.fill\") != []" \
		"$PYSITES(proc(r), \"churn\")[0][\"label\"][\"line\"] == $churn" \
		"all($PYFRAMES(s) == [] for s in $PYSITES(proc(r), \"churn\"))" \
		"all($INTERLEAVED(s) for s in $PYSITES(proc(r), \"make_lists\"))"
}

# The same program in exact mode: unchanged, and the same names.
t_python_threads_exact_mode() {
	py_threads pythrx "${PFS_PY_RUNS_EXACT:-3}" PFSHIM_MODE=exact || return 1
	$Q "$WORK/pythrx.json" \
		"$PYSITES(proc(r), \"make_lists\") != []" \
		"all($PYFRAMES(s) == [] for s in $PYSITES(proc(r), \"churn\"))"
}

# A fork pool: each worker's log stands alone and names the worker's line.
t_python_fork_pool() {
	local work
	work=$(pyline pool.py WORK_LINE)
	run_both pypool "$PY" "$PYDIR/pool.py" || return 1
	report pypool || return 1
	$Q "$WORK/pypool.json" \
		'len(r["processes"]) >= 3' \
		"sum(1 for p in r[\"processes\"] if any(s[\"label\"][\"line\"] == $work for s in $PYSITES(p, \"work\"))) >= 1" \
		'not any("never recorded" in w for w in r.get("warnings", []))'
}

# Other CPython versions where the machine has them: 3.12 and 3.13 are read, others said once.
t_python_other_versions() {
	local v p py magic grow method found=0
	grow=$(pyline versions.py GROW_LINE) method=$(pyline versions.py METHOD_LINE)
	for v in 3.12 3.13 3.10 3.9; do
		# the interpreter itself, not a launcher script in front of it (pyenv's shims: each start
		# of one costs a CPU-second and more, here to say that its version is not selected)
		py=""
		for p in $(type -ap "python$v"); do
			IFS= read -r -n 2 magic <"$p" 2>/dev/null
			[ "$magic" = '#!' ] || { py=$p; break; }
		done
		[ -n "$py" ] || continue
		found=1
		run_both "pyv$v" "$py" "$PYDIR/versions.py" || { echo "  (python$v)"; return 1; }
		report "pyv$v" || return 1
		case $v in
		3.12|3.13)
			$Q "$WORK/pyv$v.json" \
				"$PYSITES(proc(r), \"grow\")[0][\"label\"][\"line\"] == $grow" \
				"$PYFRAMES($PYSITES(proc(r), \"grow\")[0])[0] == (\"grow\", $grow)" \
				"(\"K.m\", $method) in $PYFRAMES($PYSITES(proc(r), \"grow\")[0])" \
				"$INTERLEAVED($PYSITES(proc(r), \"grow\")[0])" || { echo "  (python$v)"; return 1; } ;;
		*)
			grep -q "^pfshim: CPython $v.*C frames only" "$WORK/pyv$v.err" &&
				[ "$(grep -c 'CPython' "$WORK/pyv$v.err")" = 1 ] || { echo "  python$v: not said once"; cat "$WORK/pyv$v.err"; return 1; }
			$Q "$WORK/pyv$v.json" 'not any(f.get("python") for s in proc(r)["sites"] for f in s["frames"])' || return 1 ;;
		esac
	done
	[ $found = 1 ] || skip "no other CPython (python3.9, 3.10, 3.12, 3.13) in PATH (launcher scripts not counted)"
}
