#!/bin/sh
# make demo: the storm example under the shim, then its report; then the same run under a policy
# that prefaults the storm's site, and the two runs side by side.
# usage: demo.sh [BUILD [DIR]]: the logs go into DIR (default a new /tmp/pfshim-demo.*), kept.
set -eu
BUILD=${1:-build}
DIR=${2:-$(mktemp -d /tmp/pfshim-demo.XXXXXX)}
mkdir -p "$DIR"
POLICY='populate if site=storm_site'
echo "== native run"
"$BUILD/examples/storm"
echo
echo "== under the shim: $BUILD/pfshim record -o $DIR/run -- $BUILD/examples/storm"
"$BUILD/pfshim" record -o "$DIR/run" -- "$BUILD/examples/storm"
echo
echo "== the report: $BUILD/pfshim report $DIR/run"
"$BUILD/pfshim" report --top 5 "$DIR/run"
echo
echo "== with a prefault policy: $BUILD/pfshim record -o $DIR/policy --policy '$POLICY' -- $BUILD/examples/storm"
PFSHIM_QUIET=1 "$BUILD/pfshim" record -o "$DIR/policy" --policy "$POLICY" -- "$BUILD/examples/storm" 2>/dev/null
"$BUILD/pfshim" report --top 3 "$DIR/policy"
echo
echo "== the two runs side by side: $BUILD/pfshim diff $DIR/run $DIR/policy"
"$BUILD/pfshim" diff "$DIR/run" "$DIR/policy"
