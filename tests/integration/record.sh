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
# runs it, says in one line why the shim is not in it, naming Go, and counts its faults by mapping
# from the kernel's fault events: at least 90% of what the kernel counts for a native run of it
# (perf stat; the rest is its text, read from the file, which no mapping category counts).
t_record_go_program_explained() {
	need perf linux-perf
	need go golang-go
	printf 'package main\n\nimport "fmt"\n\nfunc main() {\n\tb := make([]byte, 64<<20)\n\tfor i := 0; i < len(b); i += 4096 {\n\t\tb[i] = 1\n\t}\n\tfmt.Println("hello from go", len(b))\n}\n' >"$WORK/hello.go"
	(cd "$WORK" && HOME=$WORK GOCACHE=$WORK/gocache GO111MODULE=off CGO_ENABLED=0 go build -o hellogo hello.go) ||
		{ echo "  go build failed"; return 1; }
	"$CLI" record -o "$WORK/recgo" -- "$WORK/hellogo" >"$WORK/recgo.out" 2>"$WORK/recgo.err"
	local rc=$?
	[ $rc = 0 ] && grep -qx "hello from go 67108864" "$WORK/recgo.out" || { echo "  rc=$rc"; cat "$WORK/recgo.err"; return 1; }
	grep -Eq "not traced: pid [0-9]+ \('$WORK/hellogo'\): a static executable \(Go\).*; its faults are counted by mapping" "$WORK/recgo.err" || {
		echo "  not explained:"; cat "$WORK/recgo.err"; return 1; }
	local native
	native=$(perf stat -x, -e minor-faults "$WORK/hellogo" 2>&1 >/dev/null | awk -F, '$3 == "minor-faults" {print $1}')
	report recgo || return 1
	$Q "$WORK/recgo.json" 'len(r["processes"]) == 1 and r["processes"][0]["mechanism"] == "fault-events-outside"' &&
		$Q "$WORK/recgo.json" "sum(p['totals']['first_touch_faults'] for p in r['processes']) >= 0.9 * $native" || {
		echo "  the kernel counted $native faults natively:"; grep -E 'faults|coverage' "$WORK/recgo.err"; return 1; }
}

# A static program touches 700 pages of a mapping and 64 of its .bss, forks, and the child writes 250
# of the 700: record counts them from the kernel's fault events, by mapping, exactly (static libc's
# own heap pages share the category of the mapping: a few more first touches there).
t_record_static_counted_by_mapping() {
	cc -static -O1 -o "$WORK/static_touch" "$ROOT/tests/preload/static_touch.c" 2>/dev/null || skip "no static libc to link with"
	rm -rf "$WORK/recst"
	"$CLI" record -o "$WORK/recst" -- "$WORK/static_touch" 700 250 >"$WORK/recst.out" 2>"$WORK/recst.err"
	local rc=$?
	[ $rc = 0 ] && grep -qx done "$WORK/recst.out" || { echo "  rc=$rc"; cat "$WORK/recst.err"; return 1; }
	report recst || return 1
	cat >"$WORK/recst.py" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
def site(p, kind):
    s = [s for s in p["sites"] if s["kind"] == kind]
    return s[0] if s else {"first_touch_faults": 0, "cow_faults": 0, "label": {}}
ps = sorted(r["processes"], key=lambda p: p["start_ns"])
ok = len(ps) == 2 and all(p["mechanism"] == "fault-events-outside" for p in ps)
if ok:
    parent, child = ps
    mapped, data, cmapped = site(parent, "unhooked"), site(parent, "data"), site(child, "unhooked")
    print("parent: mapped %d first touches, data %d (%s); child: mapped %d copy-on-write, %d first touches"
          % (mapped["first_touch_faults"], data["first_touch_faults"], data["label"].get("function"),
             cmapped["cow_faults"], cmapped["first_touch_faults"]))
    ok = (700 <= mapped["first_touch_faults"] <= 716 and 64 <= data["first_touch_faults"] <= 100
          and data["label"].get("function") == "[data of static_touch]"
          and cmapped["cow_faults"] == 250 and cmapped["first_touch_faults"] == 0
          and child["ppid"] == parent["pid"] and parent["exit_status"] == 0)
sys.exit(0 if ok else 1)
PYEOF
	$PY "$WORK/recst.py" "$WORK/recst.json" || { echo "  counts off:"; grep -E 'faults|not traced' "$WORK/recst.err"; return 1; }
}

# record --pid watches a running program for a while: its faults by mapping, from the kernel's
# fault events; the program goes on untouched.  steady_alloc maps and touches 64 pages every 20 ms.
t_record_attach_to_a_running_process() {
	cat >"$WORK/attach.c" <<'CEOF'
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void)
{
	for (int r = 0; r < 150; r++) {
		volatile char *p = mmap(NULL, 64 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (int i = 0; i < 64; i++)
			p[i * 4096] = 1;
		usleep(20000);
	}
	puts("end");
	return 0;
}
CEOF
	cc -O1 -o "$WORK/attach" "$WORK/attach.c" || return 1
	"$WORK/attach" >"$WORK/attach.out" &
	local pid=$!
	sleep 0.3
	rm -rf "$WORK/reca"
	"$CLI" record -o "$WORK/reca" --pid $pid --for 1s >"$WORK/reca.out" 2>"$WORK/reca.err"
	local rc=$?
	wait $pid
	local prc=$?
	[ $rc = 0 ] && [ $prc = 0 ] && grep -qx end "$WORK/attach.out" || { echo "  rc=$rc, the program's $prc"; cat "$WORK/reca.err"; return 1; }
	report reca || return 1
	# about 50 rounds of 64 pages in a second (a loaded machine runs fewer), never more than it made
	$Q "$WORK/reca.json" 'len(r["processes"]) == 1 and r["processes"][0]["pid"] == '$pid &&
		$Q "$WORK/reca.json" '64 * 10 <= [s["first_touch_faults"] for s in r["processes"][0]["sites"] if s["kind"] == "unhooked"][0] <= 64 * 150' || {
		grep -E 'faults|unhooked' "$WORK/reca.err"; return 1; }
	# a process that is not there: one line, status 127
	"$CLI" record --pid 999999999 >/dev/null 2>"$WORK/reca2.err"
	rc=$?
	[ $rc = 127 ] && grep -q "^pfshim: record: cannot watch pid 999999999" "$WORK/reca2.err" || { echo "  rc=$rc"; cat "$WORK/reca2.err"; return 1; }
}

# Where the kernel refuses its fault events (a seccomp filter here, kernel.perf_event_paranoid 3 on
# Debian's own kernels), a static program is named, and one more line says its faults are not
# counted; a run whose every process was traced says nothing of it.
t_record_untraced_without_fault_events() {
	static_prog hnoperf
	rm -rf "$WORK/recnp" "$WORK/recnp2"
	$T/refuse perf_event_open "$CLI" record -o "$WORK/recnp" -- "$WORK/hnoperf" >"$WORK/recnp.out" 2>"$WORK/recnp.err"
	local rc=$?
	[ $rc = 0 ] && grep -qx hello "$WORK/recnp.out" &&
		grep -q "was not traced: a static executable" "$WORK/recnp.err" &&
		[ "$(grep -c "^pfshim: record: their faults are not counted: perf_event_open" "$WORK/recnp.err")" = 1 ] || {
		echo "  rc=$rc:"; cat "$WORK/recnp.err"; return 1; }
	$T/refuse perf_event_open "$CLI" record -o "$WORK/recnp2" -- $T/three_sites >/dev/null 2>"$WORK/recnp2.err"
	! grep -q "not counted" "$WORK/recnp2.err" || { echo "  said for a traced run:"; cat "$WORK/recnp2.err"; return 1; }
}

t_record_names_untraced_processes() {
	static_prog hstatic
	rm -rf "$WORK/recs"
	"$CLI" record -o "$WORK/recs" -- "$WORK/hstatic" >"$WORK/recs.out" 2>"$WORK/recs.err"
	local rc=$?
	[ $rc = 0 ] && grep -qx hello "$WORK/recs.out" &&
		grep -Eq "not traced: pid [0-9]+ \('$WORK/hstatic'\): a static executable" "$WORK/recs.err" || {
		echo "  rc=$rc:"; cat "$WORK/recs.err"; return 1; }
	# traced, then an exec of a static program: that process is named
	"$CLI" record -o "$WORK/recs2" -- sh -c "exec $WORK/hstatic" >/dev/null 2>"$WORK/recs2.err"
	grep -Eq "not traced: pid [0-9]+ \('$WORK/hstatic'\): a static executable" "$WORK/recs2.err" || {
		echo "  the exec'd static program is not named:"; cat "$WORK/recs2.err"; return 1; }
	# started with vfork (sh does): the child before its exec, and the static program, each named
	"$CLI" record -o "$WORK/recs3" -- sh -c "$WORK/hstatic; true" >/dev/null 2>"$WORK/recs3.err"
	grep -Eq "not traced: pid [0-9]+ \('$WORK/hstatic'\): a static executable" "$WORK/recs3.err" || {
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
