# The pprof profile as `go tool pprof` reads it (Debian's golang-go).

t_pprof_opens_on_first_touch_faults() {
	run_both pprofrun sh -c "$BUILD/examples/storm; $T/touch_fork >/dev/null" || return 1
	"$CLI" report --format pprof -o "$WORK/pprofrun.pb.gz" "$WORK/pprofrun" || return 1
	need go golang-go
	# its cache and settings in the scratch directory
	HOME=$WORK GOCACHE=$WORK/gocache go tool pprof -top "$WORK/pprofrun.pb.gz" >"$WORK/pprof.top" 2>&1 || {
		cat "$WORK/pprof.top"; return 1; }
	grep -q '^Type: first_touch_faults$' "$WORK/pprof.top" || { echo "  not opened on first_touch_faults:"; head -5 "$WORK/pprof.top"; return 1; }
	# the first row: the storm's site, with its 64 MiB of first touches (16383 faults, fewer with huge pages)
	grep -A1 '^ *flat ' "$WORK/pprof.top" | tail -1 | grep -Eq '^ *[0-9]+faults .* storm_site$' || {
		echo "  the top row is not storm_site:"; head -12 "$WORK/pprof.top"; return 1; }
	HOME=$WORK GOCACHE=$WORK/gocache go tool pprof -tags "$WORK/pprofrun.pb.gz" >"$WORK/pprof.tags" 2>&1 || return 1
	grep -q "^ *command: Total" "$WORK/pprof.tags" && grep -Eq "^ +[0-9.]+ \([ 0-9.]+%\): $BUILD/examples/storm\$" "$WORK/pprof.tags" &&
		grep -q "^ *pid: Total" "$WORK/pprof.tags" || { echo "  no pid and command labels:"; head -20 "$WORK/pprof.tags"; return 1; }
	# the other types are there to choose: the child's copy-on-write faults
	HOME=$WORK GOCACHE=$WORK/gocache go tool pprof -sample_index=cow_faults -top "$WORK/pprofrun.pb.gz" >"$WORK/pprof.cow" 2>&1 || return 1
	grep -q '^Type: cow_faults$' "$WORK/pprof.cow" && grep -q 'shared_site' "$WORK/pprof.cow" || {
		echo "  cow_faults:"; head -12 "$WORK/pprof.cow"; return 1; }
}

# Named after the program (profile.proto: mapping 1 is the main binary), not after the object of
# the first frame written (libstdc++.so.6 for a C++ program, whose every stack starts in operator new).
t_pprof_named_after_the_program() {
	run_both pprofcxx $T/cxx_records || return 1
	"$CLI" report --format pprof -o "$WORK/pprofcxx.pb.gz" "$WORK/pprofcxx" || return 1
	need go golang-go
	HOME=$WORK GOCACHE=$WORK/gocache go tool pprof -top "$WORK/pprofcxx.pb.gz" >"$WORK/pprofcxx.top" 2>&1 || {
		cat "$WORK/pprofcxx.top"; return 1; }
	grep -q '^File: cxx_records$' "$WORK/pprofcxx.top" || {
		echo "  not named after the program:"; head -3 "$WORK/pprofcxx.top"; return 1; }
}
