#!/bin/bash
# usage: run-unit.sh LABEL SUMMARY BIN...
# Runs cmocka test binaries (as many at once as there are cores), one line per binary;
# a failing binary's whole output; each skipped test with the reason it printed before
# skip().  Ends with "LABEL: N passed, M failed, K skipped", also written to SUMMARY with
# the skips' reasons.  Exit 1 when a test failed or a binary died outside a test.
set -u
label=$1 summary=$2
shift 2
tmp=$(mktemp -d /tmp/pfshim-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# run_one BIN: its stdout, stderr and exit status into $tmp/NAME.{out,err,rc}
run_one() {
	local name=${1##*/}
	"$1" >"$tmp/$name.out" 2>"$tmp/$name.err"
	echo $? >"$tmp/$name.rc"
}
export -f run_one
export tmp
printf '%s\n' "$@" | xargs -P "$(nproc 2>/dev/null || echo 2)" -I{} bash -c 'run_one {}'

pass=0 fail=0 skip=0 skips=""
for bin in "$@"; do
	name=${bin##*/}
	# cmocka's stdout: "[ RUN      ] t", the test's own lines, then "[       OK ] t",
	# "[  FAILED  ] t" or "[  SKIPPED ] t"; the summary goes to stderr.
	counts=$(awk -v bin="$name" '
		/^\[ RUN      \] / { t = $4; why = ""; next }
		/^\[       OK \] / { p++; t = ""; next }
		/^\[  FAILED  \] / { f++; t = ""; next }
		/^\[  SKIPPED \] / { s++; print "SKIP " bin "/" $4 ": " (why == "" ? "(no reason printed)" : why) >"/dev/stderr"; t = ""; next }
		t != "" { why = why (why == "" ? "" : "; ") $0 }
		END { printf "%d %d %d\n", p, f, s }' "$tmp/$name.out" 2>"$tmp/$name.skips")
	read -r p f s <<<"$counts"
	rc=$(cat "$tmp/$name.rc")
	# a crash outside any test, or a status that disagrees with the counts: a failure
	[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	if [ "$f" != 0 ]; then
		echo "FAIL $name (exit $rc; $p passed, $f failed)"
		sed 's/^/  /' "$tmp/$name.out" "$tmp/$name.err"
	else
		echo "ok   $name ($p passed$([ "$s" != 0 ] && echo ", $s skipped"))"
	fi
	if [ -s "$tmp/$name.skips" ]; then
		cat "$tmp/$name.skips"
		skips="$skips$(sed 's/^/  /' "$tmp/$name.skips")"$'\n'
	fi
done
line="$label: $pass passed, $fail failed, $skip skipped"
echo "$line"
printf '%s\n%s' "$line" "$skips" >"$summary"
[ "$fail" = 0 ] && [ $((pass + skip)) -gt 0 ]
