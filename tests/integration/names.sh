# Sites named where the user's code is (issue 17): whole inlined chains, C++ names demangled,
# labels past the allocator and the language runtimes, no shim or allocator frame in any format;
# policies' site= on what the reports show.  Programs built -O2 -g as users build theirs:
# tests/preload/opt_*.c and names.cpp.

# line_of FILE MARKER: the line of tests/preload/FILE holding /* MARKER */
line_of() {
	grep -n "/\* $2 \*/" "$ROOT/tests/preload/$1" | cut -d: -f1
}

# The site with the most faults: the report ranks them, first.
TOP='proc(r)["sites"][0]'
# every frame of every site of every process
FRAMES='[f for p in r["processes"] for s in p["sites"] for f in s["frames"]]'
# no frame of the shim or of an allocator library, anywhere in a JSON report
NO_SHIM_ALLOC='not any((f["module"] or "").startswith(("libpfshim", "libjemalloc")) for f in '"$FRAMES"')'

# formats_clean NAME: every export of $WORK/NAME free of the shim's and the allocator's frames,
# sites named by their labels (the JSON report's), stacks complete
formats_clean() {
	local n=$1 f
	for f in text folded perfetto svg; do
		report "$n" $f || return 1
		if grep -Eq 'libpfshim|hook_malloc|libjemalloc|_Znwm' "$WORK/$n.$f"; then
			echo "  the $f report shows the shim, the allocator or a mangled name:"
			grep -Eo '.{0,60}(libpfshim|hook_malloc|libjemalloc|_Znwm).{0,20}' "$WORK/$n.$f" | head -3
			return 1
		fi
	done
	"$CLI" report --format pprof -o "$WORK/$n.pprof" "$WORK/$n" 2>/dev/null || { echo "  pprof failed"; return 1; }
	$PY - "$WORK/$n.json" "$WORK/$n.text" "$WORK/$n.perfetto" "$WORK/$n.svg" "$WORK/$n.pprof" <<'EOF' || return 1
import gzip, json, sys
r = json.load(open(sys.argv[1]))
text, svg = open(sys.argv[2]).read(), open(sys.argv[4]).read()
pprof = gzip.decompress(open(sys.argv[5], "rb").read())
labels = set()
for p in r["processes"]:
    for s in p["sites"]:
        l = s["label"]
        if l and l["function"]:
            labels.add("%s (%s:%d)" % (l["function"], l["file"], l["line"]) if l["file"] else l["function"])
top = r["processes"][0]["sites"][0]["label"]
name = "%s (%s:%d)" % (top["function"], top["file"], top["line"])
# text: the site's line names it by its label; svg: its bar; pprof: its "site" label
assert "#1  " + name in text, ("text", name)
assert name + " #1 " in svg, ("svg", name)
# (memory accounted by kind names its object, "[data of libjemalloc.so.2]": a name, not a frame)
frames_only = pprof.replace(b"[data of libjemalloc", b"[data of ")
assert name.encode() in pprof and b"libpfshim" not in pprof and b"libjemalloc" not in frames_only, "pprof"
# perfetto: every storm slice is named by a site's label
for e in json.load(open(sys.argv[3]))["traceEvents"]:
    if e["ph"] == "X":
        assert e["name"].startswith("storm: ") and e["name"][7:] in labels, ("perfetto", e["name"], labels)
EOF
}

# C: static inline helpers at -O2, main -> middle_load -> inner_alloc -> malloc, all inlined.
# The chain is whole (as eu-addr2line -i gives it), each frame at its own line; the label is
# inner_alloc at its malloc.
t_names_c_inline_chain() {
	command -v eu-addr2line >/dev/null || { echo "  eu-addr2line (elfutils) is missing"; return 1; }
	local inner middle mainl off
	inner=$(line_of opt_inline.c INNER_LINE)
	middle=$(line_of opt_inline.c MIDDLE_LINE)
	mainl=$(line_of opt_inline.c MAIN_LINE)
	run_both inl $T/opt_inline || return 1
	report inl || return 1
	$Q "$WORK/inl.json" \
		"$TOP[\"label\"] == {\"function\": \"inner_alloc\", \"file\": \"opt_inline.c\", \"line\": $inner, \"module\": \"opt_inline\"}" \
		"[(f[\"function\"], f[\"line\"], f[\"inlined\"]) for f in $TOP[\"frames\"][:3]] == [(\"inner_alloc\", $inner, True), (\"middle_load\", $middle, True), (\"main\", $mainl, False)]" \
		"len(set(f[\"address\"] for f in $TOP[\"frames\"][:3])) == 1" || return 1
	# elfutils' own answer for the call instruction (the return address minus one)
	off=$($PY -c 'import json,sys; r=json.load(open(sys.argv[1])); print(hex(int(r["processes"][0]["sites"][0]["frames"][0]["offset"], 16) - 1))' "$WORK/inl.json")
	eu-addr2line -i -f -e $T/opt_inline "$off" >"$WORK/inl.addr2line" || return 1
	$PY - "$WORK/inl.addr2line" "$WORK/inl.json" <<'EOF' || { cat "$WORK/inl.addr2line"; return 1; }
import json, sys
lines = open(sys.argv[1]).read().split("\n")
truth = [(lines[i].split()[0], int(lines[i + 1].split(":")[1])) for i in range(0, len(lines) - 1, 2)]
r = json.load(open(sys.argv[2]))
ours = [(f["function"], f["line"]) for f in r["processes"][0]["sites"][0]["frames"][:len(truth)]]
assert ours == truth, (ours, truth)
EOF
	formats_clean inl
}

# C++ at -O2: a vector, a push_back loop, an unordered_map, new[] in a class method and in a
# template.  Each site's label is the user's function and line, demangled; operator new and the
# containers' frames stay in the stack below it, demangled too, the raw symbol kept.
t_names_cpp_labels() {
	run_both cpp $T/names || return 1
	report cpp || return 1
	local v r l t m
	v=$(line_of names.cpp VECTOR_LINE)
	r=$(line_of names.cpp RECORDS_LINE)
	l=$(line_of names.cpp LOADER_LINE)
	t=$(line_of names.cpp TEMPLATE_LINE)
	m=$(line_of names.cpp MAP_LINE)
	$Q "$WORK/cpp.json" \
		"$TOP[\"label\"] == {\"function\": \"main\", \"file\": \"names.cpp\", \"line\": $v, \"module\": \"names\"}" \
		"set((s[\"label\"][\"function\"], s[\"label\"][\"line\"]) for s in proc(r)[\"sites\"][:5]) == {(\"main\", $v), (\"load_records\", $r), (\"app::Loader::load\", $l), (\"make_table<long>\", $t), (\"index_keys\", $m)}" \
		"all(s[\"frames\"][0][\"function\"] == \"operator new\" for s in proc(r)[\"sites\"][:5])" \
		"[f[\"symbol\"] for f in $FRAMES if f[\"function\"] == \"app::Loader::load\"] == [\"_ZN3app6Loader4loadEm\"]" \
		"any(f[\"function\"] == \"std::vector<Record, std::allocator<Record> >::push_back\" and f[\"inlined\"] for f in $FRAMES)" \
		"not any((f[\"function\"] or \"\").startswith(\"_Z\") for f in $FRAMES if f[\"module\"] in (\"names\", \"libstdc++.so.6\"))" \
		"$NO_SHIM_ALLOC" || return 1
	formats_clean cpp
}

# A frame outside every compile unit's ranges has no source line: crt1's _start in a program
# whose one unit is C++ (libdw, like eu-addr2line, answered with that unit's nearest line,
# basic_string.h:795).
t_names_no_line_outside_units() {
	run_both recs $T/cxx_records || return 1
	report recs || return 1
	$Q "$WORK/recs.json" \
		"[(f[\"file\"], f[\"line\"]) for f in $FRAMES if f[\"function\"] == \"_start\"][:1] == [(None, None)]" \
		"$TOP[\"label\"][\"function\"] == \"load\" and $TOP[\"label\"][\"file\"] == \"cxx_records.cpp\"" || return 1
}

# A program with a JIT (tests/preload/jit_perfmap.c): its code named by the perf map it wrote
# (/tmp/perf-PID.map, as `node --perf-basic-prof` writes one). The site is labelled by the program's
# JIT function, the runtime's stub under it passed over, the C function above it shown; a map dated
# before the process started is another process's (a pid reused): not read; `record` keeps a copy
# with the run, read when /tmp's is gone.
# jit_pid NAME: the pid of the one process of $WORK/NAME.json, its map noted for jit_clean
jit_pid() {
	local pid
	pid=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["processes"][0]["pid"])' "$WORK/$1.json")
	JIT_PIDS="${JIT_PIDS:-} $pid"
}
# jit_clean: the maps the program wrote under the shim (natively it removes its own)
jit_clean() {
	local p
	for p in ${JIT_PIDS:-}; do rm -f "/tmp/perf-$p.map"; done
}
jit_checks() {
	local pid jit='JS:makeTable /srv/app/table.js:3:20' site='site(proc(r), "table_alloc")'
	run_both xjit $T/jit_perfmap || return 1
	[ "$(cat "$WORK/xjit.out")" != "no JIT here" ] || skip "no JIT code for this machine in tests/preload/jit_perfmap.c"
	report xjit || return 1
	jit_pid xjit
	pid=${JIT_PIDS##* }
	$Q "$WORK/xjit.json" \
		"$site[\"label\"][\"function\"] == \"$jit\"" \
		"[(f[\"function\"], f.get(\"jit\"), f[\"module\"]) for f in $site[\"frames\"][1:3]] == [(\"$jit\", True, None), (\"Stub:JSEntry\", True, None)]" \
		"999 <= $site[\"first_touch_faults\"] <= 1000" \
		'site(proc(r), "plain_site")["label"]["function"] == "plain_site"' || return 1
	report xjit text || return 1
	grep -q "#1  $jit\$" "$WORK/xjit.text" && grep -q "Stub:JSEntry \[jit\]" "$WORK/xjit.text" ||
		{ grep -m3 '#1 \|jit' "$WORK/xjit.text"; return 1; }
	# the advice's rule names what the shim can match while the program runs: the C function the JIT code called
	"$CLI" advise --format json "$WORK/xjit" >"$WORK/xjit.adv.json" || return 1
	$Q "$WORK/xjit.adv.json" \
		'[a["rule"] for a in r["advice"] if a["function"] == "table_alloc"][0].endswith("if site=table_alloc")' \
		'not any("JS:" in (a["rule"] or "") for a in r["advice"])' || return 1
	# the same map dated an hour before the process: not its own
	touch -d "@$(($(date +%s) - 3600))" /tmp/perf-$pid.map
	report xjit || return 1
	$Q "$WORK/xjit.json" "$site[\"label\"][\"function\"] == \"table_alloc\"" \
		"not any(f.get(\"jit\") for f in $FRAMES)" || return 1
	# record: the map kept beside the log, read when /tmp's is gone
	(cd "$WORK" && "$CLI" record -o xjitrec -- $T/jit_perfmap >/dev/null 2>"$WORK/xjitrec.err") ||
		{ cat "$WORK/xjitrec.err"; return 1; }
	pid=$(ls "$WORK/xjitrec" | sed -n 's/^pfshim\.\([0-9]*\)\.pfslog$/\1/p')
	JIT_PIDS="$JIT_PIDS $pid"
	[ -s "$WORK/xjitrec/pfshim.$pid.perf.map" ] || { ls "$WORK/xjitrec"; return 1; }
	jit_clean
	report xjitrec || return 1
	$Q "$WORK/xjitrec.json" "$site[\"label\"][\"function\"] == \"$jit\""
}
t_names_jit_code_from_perf_map() {
	jit_checks
	local rc=$?
	jit_clean
	return $rc
}

# Exact mode's touch sites in JIT code: the instruction that wrote the pages, named by the map.
t_names_exact_jit_touch_sites() {
	RUN_ENV="PFSHIM_MODE=exact PFSHIM_TOUCH_SITE=1" run_both xjitt $T/jit_perfmap || return 1
	[ "$(cat "$WORK/xjitt.out")" != "no JIT here" ] || skip "no JIT code for this machine in tests/preload/jit_perfmap.c"
	report xjitt || return 1
	jit_pid xjitt
	jit_clean
	$Q "$WORK/xjitt.json" \
		'site(proc(r), "jit_touched_site")["first_touch_faults"] == 63' \
		'[(t["frame"]["function"], t["frame"].get("jit"), t["faults"]) for t in site(proc(r), "jit_touched_site")["touch_sites"]] == [("JS:touchPages /srv/app/touch.js:7:1", True, 63)]'
}

# A program linked with jemalloc: jemalloc maps memory itself, from inside the shim's malloc
# hook.  No jemalloc or shim frame is shown; the label is the user's function.
t_names_jemalloc_label() {
	local fill
	fill=$(line_of opt_jemalloc.c FILL_LINE)
	run_both jem $T/opt_jemalloc || return 1
	ldd $T/opt_jemalloc | grep -q libjemalloc || { echo "  not linked with jemalloc"; return 1; }
	report jem || return 1
	$Q "$WORK/jem.json" \
		"$TOP[\"label\"] == {\"function\": \"fill_buffer\", \"file\": \"opt_jemalloc.c\", \"line\": $fill, \"module\": \"opt_jemalloc\"}" \
		"$TOP[\"frames\"][0][\"function\"] == \"fill_buffer\"" \
		"$NO_SHIM_ALLOC" || return 1
	formats_clean jem
}

# Allocation wrappers: xmalloc (built in) is passed over; the program's own pool_grab is the
# label until --runtime-frames or PFSHIM_RUNTIME_FRAMES names it.
t_names_wrappers() {
	local table index grab
	table=$(line_of opt_wrapper.c TABLE_LINE)
	index=$(line_of opt_wrapper.c INDEX_LINE)
	run_both wrapx $T/opt_wrapper || return 1
	report wrapx || return 1
	LABELS='[(s["label"]["function"], s["label"]["line"]) for s in proc(r)["sites"][:2]]'
	grab=$($PY -c 'import json,sys; r=json.load(open(sys.argv[1])); print([s["label"]["line"] for s in r["processes"][0]["sites"] if s["label"]["function"] == "pool_grab"][0])' "$WORK/wrapx.json") || return 1
	$Q "$WORK/wrapx.json" "$LABELS == [(\"load_table\", $table), (\"pool_grab\", $grab)]" \
		"$TOP[\"frames\"][0][\"function\"] == \"xmalloc\"" || return 1
	"$CLI" report --format json --runtime-frames 'pool_*' "$WORK/wrapx" >"$WORK/wrapx.rf.json" || return 1
	$Q "$WORK/wrapx.rf.json" "$LABELS == [(\"load_table\", $table), (\"load_index\", $index)]" || return 1
	PFSHIM_RUNTIME_FRAMES='arena_*:pool_grab' "$CLI" report --format json "$WORK/wrapx" >"$WORK/wrapx.env.json" || return 1
	$Q "$WORK/wrapx.env.json" "$LABELS == [(\"load_table\", $table), (\"load_index\", $index)]"
}

# advise on the C++ program: every rule names a user function (a label), never operator new,
# std:: or a mangled name.
t_names_advise_cpp_user_functions() {
	run_both cppadv $T/names || return 1
	"$CLI" advise --format json "$WORK/cppadv" >"$WORK/cppadv.adv.json" 2>"$WORK/cppadv.adv.err" ||
		{ echo "  pfshim advise failed:"; head -3 "$WORK/cppadv.adv.err"; return 1; }
	$Q "$WORK/cppadv.adv.json" \
		'len([a for a in r["advice"] if a["rule"]]) >= 3' \
		'all(a["function"] in ("main", "load_records", "app::Loader::load", "make_table<long>", "index_keys") for a in r["advice"])' \
		'all(" if site=" + a["function"] in a["rule"] for a in r["advice"] if a["rule"])' \
		'not any(w in r["policy"] for w in ("operator", "std::", "_Z", "malloc"))'
}

# site= on a demangled name (C++) and on an inlined function (C): both apply, and their
# pages are prefaulted.  A rule that matched nothing is said by record.
t_names_policy_demangled_and_inlined() {
	(export PFSHIM_POLICY='populate if site=app::Loader::*' && run_both cpppol $T/names) || return 1
	report cpppol || return 1
	$Q "$WORK/cpppol.json" \
		'[s["prefaulted_pages"] >= 4000 for s in proc(r)["sites"] if s["label"]["function"] == "app::Loader::load"] == [True]' \
		'[s["policy"] for s in proc(r)["sites"] if s["policy"]] == ["populate if site=app::Loader::*"]' || return 1
	(export PFSHIM_POLICY='populate if site=middle_load' && run_both inlpol $T/opt_inline) || return 1
	report inlpol || return 1
	$Q "$WORK/inlpol.json" \
		'[s["prefaulted_pages"] >= 8000 for s in proc(r)["sites"] if s["label"]["function"] == "inner_alloc"] == [True]' \
		'[s["policy"] for s in proc(r)["sites"] if s["policy"]] == ["populate if site=middle_load"]' || return 1
	(cd "$WORK" && "$CLI" record -o "$WORK/recpol" -p 'populate if site=no_such_function; populate if site=inner_alloc' \
		-- $T/opt_inline >/dev/null 2>"$WORK/recpol.err") || return 1
	grep -q "no allocation of the run matched 'populate if site=no_such_function'" "$WORK/recpol.err" || {
		echo "  record did not say which rule matched nothing:"; grep -i policy "$WORK/recpol.err"; return 1; }
	grep -q "populate if site=inner_alloc (1 applied" "$WORK/recpol.err" ||
		{ echo "  the other rule did not apply"; return 1; }
}

# An object without symbols (a stripped copy of a test program): said once, with how to get them.
t_names_missing_symbols_explained() {
	cp $T/opt_wrapper "$WORK/opt_wrapper_stripped" && strip --strip-all "$WORK/opt_wrapper_stripped" || return 1
	run_both stripped "$WORK/opt_wrapper_stripped" || return 1
	report stripped text || return 1
	[ "$(grep -c 'no debugging symbols' "$WORK/stripped.text")" = 1 ] &&
		grep -q "opt_wrapper_stripped (frames unnamed; not from a Debian package: build it with -g)" "$WORK/stripped.text" &&
		grep -q 'DEBUGINFOD_URLS' "$WORK/stripped.text" || {
		echo "  no single explanation of the missing symbols:"; grep -n 'symbols' "$WORK/stripped.text"; return 1; }
}

# An object of a Debian package without debugging symbols: named with its package, which one
# dpkg-query call finds for the whole report (each call reads the package database, ~0.3 CPU-s);
# a report whose objects all have DWARF (libc: libc6-dbg, which make check installs) runs none.
t_names_package_of_missing_symbols() {
	local real id calls
	real=$(command -v dpkg-query) || skip "no dpkg-query: not a Debian system"
	id=$(readelf -n /usr/bin/sort | awk '/Build ID/ {print $3}')
	[ -e "/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug" ] && skip "coreutils' debugging symbols are installed"
	mkdir -p "$WORK/bin" && printf '#!/bin/sh\necho "$*" >>"%s/dpkg.calls"\nexec "%s" "$@"\n' \
		"$WORK" "$real" >"$WORK/bin/dpkg-query" && chmod +x "$WORK/bin/dpkg-query" || return 1
	seq 1 20000 | shuf >"$WORK/nums" || return 1
	run_both sorted sort -n "$WORK/nums" || return 1
	: >"$WORK/dpkg.calls"
	PATH=$WORK/bin:$PATH report sorted text || return 1
	grep -q "/usr/bin/sort (frames unnamed; package coreutils: its coreutils-dbgsym)" "$WORK/sorted.text" || {
		echo "  sort's package not named:"; grep -A1 'Warnings' "$WORK/sorted.text"; return 1; }
	calls=$(wc -l <"$WORK/dpkg.calls")
	[ "$calls" = 1 ] || { echo "  dpkg-query ran $calls times for one report:"; cat "$WORK/dpkg.calls"; return 1; }
	# cat's package lists it as /bin/cat; on a merged /usr the process runs /usr/bin/cat (its real
	# path): named with its package all the same, not as a program of the user's.
	run_both catted cat "$WORK/nums" || return 1
	PATH=$WORK/bin:$PATH report catted text || return 1
	grep -q "/cat (frames unnamed; package coreutils: its coreutils-dbgsym)" "$WORK/catted.text" || {
		echo "  cat's package not named (dpkg-query -S /bin/cat: $(dpkg-query -S /bin/cat 2>&1)):"
		grep -A1 'Warnings' "$WORK/catted.text"; return 1; }
	run_both three $T/three_sites || return 1
	: >"$WORK/dpkg.calls"
	PATH=$WORK/bin:$PATH report three text || return 1
	[ ! -s "$WORK/dpkg.calls" ] || {
		echo "  dpkg-query ran for a report whose objects all have symbols:"; cat "$WORK/dpkg.calls"; return 1; }
}
