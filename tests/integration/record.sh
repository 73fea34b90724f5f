# `pfshim record` and `advise --verify` run programs through one launcher (analyzer/launch.c):
# the log directory, a reused one, exec failures, and the processes that were not traced.

t_record_makes_missing_parents() {
	rm -rf "$WORK/recp"
	(cd "$WORK" && "$CLI" record -o recp/a/b -- $T/three_sites >"$WORK/recp.out" 2>"$WORK/recp.err")
	local rc=$?
	[ $rc = 3 ] && grep -q '^allocated 16 blocks$' "$WORK/recp.out" || {
		echo "  rc=$rc"; cat "$WORK/recp.err"; return 1; }
	ls "$WORK"/recp/a/b/*.pfslog >/dev/null 2>&1 || { echo "  no log in recp/a/b"; return 1; }
	[ "$(stat -c %a "$WORK/recp/a")" = 700 ] && [ "$(stat -c %a "$WORK/recp/a/b")" = 700 ] || {
		echo "  modes $(stat -c %a "$WORK/recp/a") $(stat -c %a "$WORK/recp/a/b")"; return 1; }
	grep -q "^pfshim: logs in $WORK/recp/a/b\$" "$WORK/recp.err" || { tail -3 "$WORK/recp.err"; return 1; }
	! grep -q 'static\|setuid\|not traced' "$WORK/recp.err" || { grep 'static\|setuid\|not traced' "$WORK/recp.err"; return 1; }
	# a parent that cannot be made: said, with the component, and the program not run
	: >"$WORK/recp.file"
	(cd "$WORK" && "$CLI" record -o recp.file/logs -- $T/three_sites >"$WORK/recp2.out" 2>"$WORK/recp2.err")
	rc=$?
	[ $rc = 127 ] && [ ! -s "$WORK/recp2.out" ] &&
		grep -q "cannot make the log directory '$WORK/recp.file/logs': $WORK/recp.file: Not a directory" "$WORK/recp2.err" || {
		echo "  rc=$rc"; cat "$WORK/recp2.err"; return 1; }
}

t_record_refuses_a_directory_with_logs() {
	rm -rf "$WORK/recr"
	"$CLI" record -o "$WORK/recr" -- $T/three_sites >/dev/null 2>&1
	local before
	before=$(ls "$WORK"/recr/*.pfslog)
	"$CLI" record -o "$WORK/recr" -- $T/three_sites >"$WORK/recr.out" 2>"$WORK/recr.err"
	local rc=$?
	[ $rc = 2 ] && [ ! -s "$WORK/recr.out" ] && grep -q "already holds the logs of a run (1 file)" "$WORK/recr.err" &&
		[ "$(ls "$WORK"/recr/*.pfslog)" = "$before" ] || {
		echo "  rc=$rc, a second run into the same directory:"; cat "$WORK/recr.err"; ls "$WORK/recr"; return 1; }
	"$CLI" record --force -o "$WORK/recr" -- $T/three_sites >"$WORK/recr.out" 2>"$WORK/recr.err"
	rc=$?
	[ $rc = 3 ] && grep -q "removed the 1 log of an earlier run" "$WORK/recr.err" || {
		echo "  rc=$rc with --force:"; cat "$WORK/recr.err"; return 1; }
	report recr || return 1
	$Q "$WORK/recr.json" 'len(r["processes"]) == 1'
}

# static_prog NAME: a statically linked hello in $WORK/NAME, or the test skips (no static libc)
static_prog() {
	printf '#include <stdio.h>\nint main(void){puts("hello");return 0;}\n' >"$WORK/$1.c"
	cc -static -o "$WORK/$1" "$WORK/$1.c" 2>/dev/null || skip "no static libc to link with"
}

# A Go program (Debian's golang-go builds it static, its runtime calls the kernel itself): record
# runs it, and says in one line why there is no log, naming Go.
t_record_go_program_explained() {
	need go golang-go
	printf 'package main\n\nimport "fmt"\n\nfunc main() {\n\tb := make([]byte, 64<<20)\n\tfor i := 0; i < len(b); i += 4096 {\n\t\tb[i] = 1\n\t}\n\tfmt.Println("hello from go", len(b))\n}\n' >"$WORK/hello.go"
	(cd "$WORK" && HOME=$WORK GOCACHE=$WORK/gocache GO111MODULE=off CGO_ENABLED=0 go build -o hellogo hello.go) ||
		{ echo "  go build failed"; return 1; }
	"$CLI" record -o "$WORK/recgo" -- "$WORK/hellogo" >"$WORK/recgo.out" 2>"$WORK/recgo.err"
	local rc=$?
	[ $rc = 0 ] && grep -qx "hello from go 67108864" "$WORK/recgo.out" || { echo "  rc=$rc"; cat "$WORK/recgo.err"; return 1; }
	grep -q "no logs were written: '$WORK/hellogo' was not traced: a static executable (Go)" "$WORK/recgo.err" || {
		echo "  not explained:"; cat "$WORK/recgo.err"; return 1; }
}

t_record_names_untraced_processes() {
	static_prog hstatic
	rm -rf "$WORK/recs"
	"$CLI" record -o "$WORK/recs" -- "$WORK/hstatic" >"$WORK/recs.out" 2>"$WORK/recs.err"
	local rc=$?
	[ $rc = 0 ] && grep -qx hello "$WORK/recs.out" &&
		grep -q "no logs were written: '$WORK/hstatic' was not traced: a static executable" "$WORK/recs.err" || {
		echo "  rc=$rc:"; cat "$WORK/recs.err"; return 1; }
	[ ! -e "$WORK/recs" ] || { echo "  an empty log directory was left"; return 1; }
	# traced, then an exec of a static program: that process is named
	"$CLI" record -o "$WORK/recs2" -- sh -c "exec $WORK/hstatic" >/dev/null 2>"$WORK/recs2.err"
	grep -Eq "not traced: pid [0-9]+ after exec of '$WORK/hstatic': a static executable" "$WORK/recs2.err" || {
		echo "  the exec'd static program is not named:"; cat "$WORK/recs2.err"; return 1; }
	# started with vfork (sh does): counted, as its pid is not logged
	"$CLI" record -o "$WORK/recs3" -- sh -c "$WORK/hstatic; true" >/dev/null 2>"$WORK/recs3.err"
	grep -Eq "not traced: 1 process started by pid [0-9]+ \(sh -c .*\) with (vfork|posix_spawn)" "$WORK/recs3.err" ||
		grep -Eq "not traced: pid [0-9]+ (, started by|after exec)" "$WORK/recs3.err" || {
		echo "  the child that ran the static program is not named:"; cat "$WORK/recs3.err"; return 1; }
}

# A program that exits 127 ran; one that cannot be started did not: both commands tell them apart.
t_launch_exec_failure_is_not_status_127() {
	"$CLI" advise --verify -n 1 -o "$WORK/adv127" -- sh -c 'exit 127' >"$WORK/adv127.out" 2>"$WORK/adv127.err"
	local rc=$?
	[ $rc != 127 ] && ! grep -q 'cannot run' "$WORK/adv127.err" || {
		echo "  a program exiting 127 was taken for one that cannot run (rc=$rc):"; cat "$WORK/adv127.err"; return 1; }
	"$CLI" advise --verify -n 1 -- /nonexistent/prog >/dev/null 2>"$WORK/advno.err"
	rc=$?
	[ $rc = 127 ] && grep -q "^pfshim: advise: cannot run '/nonexistent/prog': No such file or directory" "$WORK/advno.err" || {
		echo "  rc=$rc:"; cat "$WORK/advno.err"; return 1; }
	"$CLI" record -- /nonexistent/prog >/dev/null 2>"$WORK/recno.err"
	rc=$?
	[ $rc = 127 ] && grep -q "^pfshim: record: cannot run '/nonexistent/prog': No such file or directory" "$WORK/recno.err" || {
		echo "  rc=$rc:"; cat "$WORK/recno.err"; return 1; }
}
