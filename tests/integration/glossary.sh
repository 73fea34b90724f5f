# The documents read on their own: every word a text report prints is in the glossary of
# docs/analyzer.md (tests/lib/glossary.py), checked on reports of runs that bring out its every
# part, each beside its JSON (whose strings from the logs and programs are set aside); no link
# points outside the repository.

# gloss_report NAME [OPTIONS...]: the text and JSON reports of $WORK/NAME with OPTIONS, into the list
gloss_report() {
	local name=$1 tag=$1.$((++gloss_n))
	shift
	"$CLI" report --top 3 "$@" "$WORK/$name" >"$WORK/gl-$tag.text" 2>/dev/null
	"$CLI" report --format json "$@" "$WORK/$name" >"$WORK/gl-$tag.json" 2>/dev/null
	gloss_files="$gloss_files $WORK/gl-$tag.text $WORK/gl-$tag.json"
}

t_glossary_has_every_word_of_the_text_report() {
	local gloss_files="" gloss_n=0
	# several processes, storms, copy-on-write, the tree, the run's top sites
	run_both glmulti sh -c "$BUILD/examples/storm; $T/touch_fork >/dev/null" || return 1
	gloss_report glmulti
	gloss_report glmulti --top 1 --depth 1
	gloss_report glmulti --comm storm --since 1ms --until 10s
	gloss_report glmulti --site shared_site --pid "$(ls "$WORK"/glmulti/*.pfslog | head -1 | grep -o '[0-9]*' | tail -1)"
	gloss_report glmulti --site no_such_function
	# a policy, off mode, an exec chain, a process killed, more processes than the summary lists
	RUN_ENV=PFSHIM_POLICY=populate run_both glpol $BUILD/examples/storm || return 1
	gloss_report glpol
	RUN_ENV=PFSHIM_MODE=off run_both gloff $T/three_sites || return 1
	gloss_report gloff
	run_both glexec $T/exec_chain 2 || return 1
	gloss_report glexec
	run_both glkill $T/hostile abort || return 1
	gloss_report glkill
	run_both gltree $T/hostile tree || return 1
	gloss_report gltree
	# a Python program: its Python frames
	run_both glpy /usr/bin/python3 "$ROOT/tests/python/versions.py" || return 1
	gloss_report glpy
	# exact mode with the touching instructions, where this machine allows it
	RUN_ENV="PFSHIM_MODE=exact PFSHIM_TOUCH_SITE=1" run_both glexact $BUILD/examples/storm || return 1
	gloss_report glexact
	grep -q '^# mode: *exact' "$WORK"/gl-glexact.*.text || echo "  (exact mode not available here: its lines not checked)"
	$PY "$ROOT/tests/lib/glossary.py" "$ROOT/docs/analyzer.md" $gloss_files >"$WORK/glossary.out" || {
		cat "$WORK/glossary.out"; return 1; }
}

# The documents stand alone: nothing points outside the repository, every relative link resolves.
t_docs_stand_alone() {
	if grep -rn '\.\./shared\|CONTRACT' "$ROOT/README.md" "$ROOT/docs/"; then
		echo "  the documents point outside the repository"; return 1
	fi
	$PY - "$ROOT" <<'PY' || return 1
import os, re, sys
root = sys.argv[1]
files = [os.path.join(root, "README.md")] + [os.path.join(root, "docs", f) for f in os.listdir(os.path.join(root, "docs")) if f.endswith(".md")]
bad = []
for f in files:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", open(f, encoding="utf-8").read()):
        if "://" in target:
            continue
        if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(f), target))):
            bad.append("%s: %s" % (os.path.relpath(f, root), target))
for b in bad:
    print("  broken link:", b)
sys.exit(1 if bad else 0)
PY
}
