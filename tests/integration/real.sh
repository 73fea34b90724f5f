# Real programs from Debian (issue 7): output and exit status as without the shim, in fast mode
# (t_NAME) and in exact mode (t_exact_NAME: every fault through the handler).  Each real_NAME
# runs in mode $MODE; the inputs are shared, so both modes compare with one native run.

real_python3() {
	local prog
	prog=$(shared_input prog.py cat <<'PY'
import json, collections, multiprocessing as mp
def sq(x):
    return x * x
if __name__ == "__main__":
    words = collections.Counter("the quick brown fox jumps over the lazy dog the end".split())
    print(json.dumps(words, sort_keys=True))
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        print(sum(pool.map(sq, range(1000))))
PY
)
	run_mode "$MODE" py /usr/bin/python3 "$prog" || return 1
	$Q "$WORK/py.json" 'len(r["processes"]) >= 3' 'any(p["totals"]["allocations"] > 1000 for p in r["processes"])' \
		'sum(p["totals"]["first_touch_faults"] for p in r["processes"]) > 1000'
}

real_bash_pipeline() {
	run_mode "$MODE" sh /bin/bash -c 'for i in $(seq 1 20); do echo $i; done | sort -n | tail -3 | tr 0-9 a-j; (exit 4)' || return 1
	$Q "$WORK/sh.json" 'len(r["processes"]) >= 4'
}

real_sort_large() {
	local nums
	nums=$(shared_input nums.txt awk 'BEGIN {for (i = 1; i <= 200000; i++) print (i * 7919) % 100003}')
	run_mode "$MODE" sort sort -n "$nums"
}

real_gcc_compile() {
	local hello
	hello=$(shared_input hello.c printf '#include <stdio.h>\nint main(void){puts("compiled");return 0;}\n')
	run_mode "$MODE" gcc gcc -O2 -o /dev/null "$hello" || return 1
	$Q "$WORK/gcc.json" 'len(r["processes"]) >= 3'
}

# in the work directory (each run's own: the command line is the same)
real_git() {
	run_mode "$MODE" git bash -c "rm -rf repo && git init -q repo && cd repo && echo hi > f && git add f && git -c user.name=t -c user.email=t@e commit -qm one && git log --format=%s"
}

real_perl() {
	local prog
	prog=$(shared_input prog.pl cat <<'PL'
my %h; $h{$_ % 1000} .= "x" for 1 .. 200000;
my $pid = fork(); if ($pid == 0) { print "child ", scalar(keys %h), "\n"; exit 3 }
waitpid($pid, 0); print "parent ", length(join "", values %h), " child exit ", $? >> 8, "\n";
my @w = sort { $b cmp $a } map { sprintf "%05d", ($_ * 7919) % 100003 } 1 .. 50000; print "$w[0] $w[-1]\n";
PL
)
	run_mode "$MODE" perl /usr/bin/perl "$prog" || return 1
	$Q "$WORK/perl.json" 'len(r["processes"]) == 2' 'sum(p["totals"]["cow_faults"] for p in r["processes"]) > 0'
}

real_awk() {
	local in
	in=$(shared_input awk.in awk 'BEGIN {for (i = 1; i <= 300000; i++) print i % 977, i}')
	run_mode "$MODE" awk gawk '{s[$1] += $2; n[$1]++} END {for (k in s) t += s[k] / n[k]; printf "%d %.3f\n", length(s), t}' "$in"
}

# 5.2 MiB: two of xz -1's 3 MiB blocks, one a thread
real_xz_threads() {
	local in
	in=$(shared_input xz.in seq 1 800000)
	run_mode "$MODE" xz bash -c "xz -T2 -1 -c $in | tee xz.out.xz | xz -d | sha256sum; sha256sum < xz.out.xz" || return 1
	$Q "$WORK/xz.json" 'any(p["totals"]["first_touch_faults"] > 100 for p in r["processes"])'
}

real_sqlite() {
	need sqlite3 sqlite3
	run_mode "$MODE" sqlite sqlite3 :memory: "create table t(a integer, b text); with recursive c(x) as (select 1 union all select x + 1 from c where x < 200000) insert into t select x, hex(x * 7919 % 100003) from c; create index i on t(b); select count(*), sum(a), max(b) from t; select count(*) from t where a % 7 = 3;"
}

# Redis saving in the background (fork) while a client writes: its children's copy-on-write.
# It listens on a socket in its own directory (no port shared with another test).
real_redis_bgsave() {
	need redis-server redis-server
	need redis-cli redis-tools
	local d=$WORK/redis
	mkdir -p "$d"
	local cli="redis-cli -s $d/sock"
	(cd "$d" && env PFSHIM_MODE=$MODE PFSHIM_OUT="$d/logs" timeout 120 sh -c 'LD_PRELOAD=$0 exec "$@"' "$LIB" redis-server \
		--port 0 --unixsocket "$d/sock" --save "" --appendonly no --enable-debug-command yes --dir "$d" \
		--dbfilename dump.rdb --daemonize no --logfile "$d/redis.log" >"$d/out" 2>"$d/err") &
	local server=$!
	local i
	for i in $(seq 1 200); do
		[ "$($cli ping 2>/dev/null)" = PONG ] && break
		sleep 0.1
	done
	$cli debug populate 400000 key 100 >/dev/null || { echo "  redis did not start"; cat "$d/err"; return 1; }
	$cli bgsave >/dev/null
	seq 1 200000 | awk '{printf "SET key:%d %s\r\n", $1 % 400000, "rewritten-while-saving"}' | $cli --pipe >/dev/null
	for i in $(seq 1 600); do
		$cli info persistence | grep -q 'rdb_bgsave_in_progress:0' && break
		sleep 0.1
	done
	local info keys
	info=$($cli info persistence | tr -d '\r')
	keys=$($cli dbsize)
	$cli shutdown nosave >/dev/null 2>&1
	wait $server
	local rc=$?
	echo "$info" | grep -q 'rdb_last_bgsave_status:ok' || { echo "  bgsave failed: $info"; return 1; }
	[ "$keys" = 400000 ] || { echo "  dbsize $keys"; return 1; }
	[ $rc = 0 ] || { echo "  redis-server exited $rc"; tail -5 "$d/redis.log"; return 1; }
	"$CLI" report --format json "$d/logs" >"$d/r.json" || return 1
	$Q "$d/r.json" "r[\"mode\"] == \"$MODE\"" 'len(r["processes"]) >= 2' \
		'any(p["totals"]["cow_faults"] > 0 for p in r["processes"])' || return 1
	# For docs/redis.md: Redis's own figure beside pfshim's.
	if [ -n "${PFS_KEEP_NUMBERS:-}" ]; then
		$PY -c 'import json,sys; r=json.load(open(sys.argv[1])); print("pfshim cow_faults per process:", [(p["pid"], p["totals"]["cow_faults"], p["totals"]["first_touch_faults"]) for p in r["processes"]])' "$d/r.json" >"$PFS_KEEP_NUMBERS"
		echo "$info" | grep -E 'rdb_last_cow_size|rdb_last_bgsave_time' >>"$PFS_KEEP_NUMBERS"
	fi
	return 0
}

# node with its perf map (--perf-basic-prof; --interpreted-frames-native-stack gives interpreted
# functions frames of their own): the array that fill() grows is labelled by fill, a JIT frame named
# by the map, which the wrapper keeps beside node's log (as docs/analyzer.md says to) and removes
# from /tmp.
real_node_jit() {
	need node nodejs
	local prog wrap
	prog=$(shared_input fill.js cat <<'JS'
function fill(n) {
  const a = [];
  for (let i = 0; i < n; i++) a.push({ i, s: "v" + i });
  return a;
}
const a = fill(1000000);
let t = 0;
for (const o of a) t += o.i;
console.log(a.length, t);
JS
)
	wrap=$(shared_input node_jit.sh cat <<'SH'
node --perf-basic-prof --interpreted-frames-native-stack "$1" & p=$!
wait $p; s=$?
[ -z "${PFSHIM_OUT:-}" ] || cp /tmp/perf-$p.map "$PFSHIM_OUT/pfshim.$p.perf.map"
rm -f /tmp/perf-$p.map
exit $s
SH
)
	run_mode "$MODE" node sh "$wrap" "$prog" || return 1
	$Q "$WORK/node.json" \
		'any(re.fullmatch(r"JS:[*~^]fill /.*/fill\.js:1:\d+", s["label"]["function"] or "") for s in proc(r, "node --perf")["sites"][:3])' \
		'any(f.get("jit") and f["module"] is None for s in proc(r, "node --perf")["sites"] for f in s["frames"])'
}

# t_NAME (fast mode) and t_exact_NAME for each real_NAME above
for real in python3 bash_pipeline sort_large gcc_compile git perl awk xz_threads sqlite redis_bgsave node_jit; do
	eval "t_$real() { MODE=fast real_$real; }; t_exact_$real() { MODE=exact real_$real; }"
done
unset real
