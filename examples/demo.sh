#!/bin/sh
# make demo: the storm example under the shim, then its report.
set -eu
BUILD=${1:-build}
DIR=$(mktemp -d /tmp/pfshim-demo.XXXXXX)
echo "== native run"
"$BUILD/examples/storm"
echo
echo "== under the shim: $BUILD/pfshim record -o $DIR/run -- $BUILD/examples/storm"
"$BUILD/pfshim" record -o "$DIR/run" -- "$BUILD/examples/storm"
echo
echo "== the report: $BUILD/pfshim report $DIR/run"
"$BUILD/pfshim" report --top 5 "$DIR/run"
