# Security (issue 7, docs/security.md).
# A setuid program is left alone (no log, unchanged output).
needs_root t_setuid_program_left_alone
t_setuid_program_left_alone() {
	local d=$WORK/suid
	mkdir -p "$d" && chmod 755 "$d"
	install -m 4755 -o nobody $T/touch_pages "$d/touch_pages" || return 1
	(cd "$d" && PFSHIM_OUT="$d/logs" LD_PRELOAD="$LIB" ./touch_pages 3 2 >"$d/out" 2>"$d/err") || { cat "$d/err"; return 1; }
	grep -qx 'touched 3 + 2 + 10 + 25 pages' "$d/out" || { cat "$d/out"; return 1; }
	[ ! -e "$d/logs" ] || { echo "  a setuid program was traced:"; ls -la "$d/logs"; return 1; }
}
