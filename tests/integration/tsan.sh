# ThreadSanitizer (issue 7): a multi-threaded program built with -fsanitize=thread runs under the
# shim with the same output and no report.  The shim tells TSan about its own locks (weak
# __tsan_acquire/__tsan_release), and avoids libunwind's per-thread caches, whose thread-exit
# destructors crash TSan.
t_tsan_threads_clean_under_shim() {
	local d=$WORK/tsan
	mkdir -p "$d"
	if ! cc -O1 -g -fsanitize=thread -o "$d/threads" "$ROOT/tests/preload/threads.c" -lpthread 2>"$d/cc.err"; then
		echo "  cannot build with -fsanitize=thread:"; head -3 "$d/cc.err"; return 1
	fi
	cc -O1 -g -fsanitize=thread -o "$d/touch_threads" "$ROOT/tests/preload/touch_threads.c" -lpthread || return 1
	local p
	for p in threads touch_threads; do
		run_both tsan-$p "$d/$p" || return 1
		if grep -q 'ThreadSanitizer' "$WORK/tsan-$p.err"; then
			echo "  ThreadSanitizer spoke under the shim:"; head -20 "$WORK/tsan-$p.err"; return 1
		fi
		report tsan-$p || return 1
	done
	$Q "$WORK/tsan-touch_threads.json" 'site(proc(r), "worker_site")["first_touch_faults"] == 400'
}
