# Policies (PFSHIM_POLICY, docs/policy.md): actions applied at allocation time, their POLICY
# records, and what the report makes of them.  Sourced by tests/run-integration.sh.

# run_policy NAME POLICY CMD...: run_both with PFSHIM_POLICY set (RUN_ENV splits on blanks, rules have them).
run_policy() {
	local name=$1 pol=$2
	shift 2
	(export PFSHIM_POLICY="$pol" && run_both "$name" "$@")
}

# The storm site populated at allocation: its first touches become prefaulted pages, one for one;
# the quiet site is untouched.  storm_site is a static function of a program linked without
# -rdynamic: only the executable's .symtab names it.
t_policy_storm_site_populated() {
	if nm -D "$T/policy_storm" | grep -q storm_site || ! nm "$T/policy_storm" | grep -q ' t storm_site$'; then
		echo "  storm_site must be a static function, absent from the dynamic symbols"
		return 1
	fi
	run_both pnone $T/policy_storm || return 1
	report pnone || return 1
	run_policy pstorm 'populate if site=storm_site' $T/policy_storm || return 1
	report pstorm || return 1
	local exact='== 4095'
	thp_always && exact='>= 4000'
	local base=$WORK/pnone.json
	$Q "$base" "site(proc(r), \"storm_site\")[\"first_touch_faults\"] $exact" \
		'site(proc(r), "quiet_site")["first_touch_faults"] == 100' || return 1
	local storm_ft quiet_ft
	storm_ft=$($Q "$base" '=site(proc(r), "storm_site")["first_touch_faults"]') || return 1
	quiet_ft=$($Q "$base" '=site(proc(r), "quiet_site")["first_touch_faults"]') || return 1
	$Q "$WORK/pstorm.json" \
		'r["mode"] == "fast"' \
		'site(proc(r), "storm_site")["first_touch_faults"] == 0' \
		"site(proc(r), \"storm_site\")[\"prefaulted_pages\"] == $storm_ft" \
		'site(proc(r), "storm_site")["policy"] == "populate if site=storm_site"' \
		'site(proc(r), "storm_site")["policy_applications"] == 1' \
		'site(proc(r), "storm_site")["policy_failures"] == {}' \
		"site(proc(r), \"quiet_site\")[\"first_touch_faults\"] == $quiet_ft" \
		'site(proc(r), "quiet_site")["prefaulted_pages"] == 0' \
		'site(proc(r), "quiet_site")["policy"] is None' \
		"proc(r)[\"totals\"][\"prefaulted_pages\"] == $storm_ft" || return 1
	report pstorm text || return 1
	grep -q 'policy: populate if site=storm_site (1 applied, [0-9]* pages prefaulted)' "$WORK/pstorm.text" || {
		echo "  the text report does not show the policy:"; grep -n policy "$WORK/pstorm.text"; return 1; }
}

# Heap blocks (under the mmap threshold): every page the site would fault is either prefaulted or,
# for the pages a block shares with its neighbours, still a first touch.
t_policy_heap_blocks() {
	run_both phnone $T/policy_storm || return 1
	report phnone || return 1
	run_policy pheap 'populate if site=heap_site' $T/policy_storm || return 1
	report pheap || return 1
	local ft
	ft=$($Q "$WORK/phnone.json" '=site(proc(r), "heap_site")["first_touch_faults"]') || return 1
	$Q "$WORK/pheap.json" \
		"site(proc(r), \"heap_site\")[\"first_touch_faults\"] + site(proc(r), \"heap_site\")[\"prefaulted_pages\"] == $ft" \
		'site(proc(r), "heap_site")["prefaulted_pages"] >= 8 * 15' \
		'site(proc(r), "heap_site")["policy_applications"] == 8' \
		'site(proc(r), "storm_site")["prefaulted_pages"] == 0'
}

# Mode off counts no faults, but applies policies all the same.
t_policy_mode_off() {
	(export PFSHIM_MODE=off && run_policy poff 'populate if site=storm_site' $T/policy_storm) || return 1
	report poff || return 1
	local exact='== 4095'
	thp_always && exact='>= 4000'
	$Q "$WORK/poff.json" 'r["mode"] == "off"' \
		'proc(r)["totals"]["first_touch_faults"] == 0' \
		"site(proc(r), \"storm_site\")[\"prefaulted_pages\"] $exact" \
		'site(proc(r), "storm_site")["policy"] == "populate if site=storm_site"'
}

# A rule that does not parse: one line naming the position, no policy, the program as without it.
t_policy_bad_rule_one_line() {
	run_policy pbad 'populate if site' $T/policy_storm || return 1
	[ "$(grep -c '^pfshim: ' "$WORK/pbad.err")" = 2 ] &&
		[ "$(grep -c "^pfshim: policy: position 17: 'site' needs =; no policy applied$" "$WORK/pbad.err")" = 1 ] || {
		echo "  expected one policy line (and the summary):"; cat "$WORK/pbad.err"; return 1; }
	report pbad || return 1
	$Q "$WORK/pbad.json" 'proc(r)["totals"]["prefaulted_pages"] == 0' \
		'all(s["policy"] is None for s in proc(r)["sites"])' \
		'site(proc(r), "storm_site")["first_touch_faults"] >= 4000'
}

POLICY_ALL='populate if site=populate_site; populate_read if site=populate_read_site;
	hugepage if site=hugepage_site; hugepage,populate if site=dense_site; nohugepage if site=nohugepage_site;
	sequential if site=sequential_site; random if site=random_site; mlock if site=mlock_site;
	populate if site=malloc_site; populate if size>=24M; populate_read,willneed if kind=mmap-file'

# Each action, as the kernel reports it inside the program right after the allocation returned.
t_policy_each_action() {
	head -c $((64 * 4096)) /dev/urandom >"$WORK/pact.file"
	local want line cut=cat
	# THP eligibility and huge pages as listed hold where THP is "madvise"; elsewhere the rest does.
	[ "$(thp_mode)" = madvise ] || cut="sed s/.thp.*//"
	echo "  found: THP $(thp_mode)$([ "$cut" = cat ] || echo ': huge page columns not compared')"
	$T/policy_actions "$WORK/pact.file" >"$WORK/pact.native" || return 1
	# Natively nothing is present, no advice given.
	[ "$($cut "$WORK/pact.native" | grep -c "present 0/[0-9]* flags - locked 0$(test "$cut" = cat && echo ' thp 0 huge no')$")" = 12 ] || {
		echo "  native run:"; cat "$WORK/pact.native"; return 1; }
	(cd "$WORK" && PFSHIM_POLICY="$POLICY_ALL" PFSHIM_OUT="$WORK/pact" LD_PRELOAD=$LIB $T/policy_actions "$WORK/pact.file" \
		>"$WORK/pact.out" 2>"$WORK/pact.err") || { cat "$WORK/pact.err"; return 1; }
	while read -r want; do
		$cut "$WORK/pact.out" | grep -qx "$(echo "$want" | $cut)" || {
			echo "  expected '$want':"; cat "$WORK/pact.out"; return 1; }
	done <<'EOF'
populate present 256/256 flags - locked 0 thp 0 huge no
populate_read present 256/256 flags - locked 0 thp 0 huge no
hugepage present 0/1024 flags hg locked 0 thp 1 huge no
nohugepage present 0/1024 flags nh locked 0 thp 0 huge no
sequential present 0/256 flags sr locked 0 thp 0 huge no
random present 0/256 flags rr locked 0 thp 0 huge no
mlock present 4096/4096 flags lo locked 16384 thp 0 huge no
malloc present 767/767 flags - locked 0 thp 0 huge no
size24M present 6144/6144 flags - locked 0 thp 0 huge no
size20M present 0/5120 flags - locked 0 thp 0 huge no
file present 64/64 flags - locked 0 thp 0 huge no
EOF
	line=$(grep '^dense ' "$WORK/pact.out")
	case "$line" in
	"dense present 8192/8192 flags hg locked 0 thp "*) ;;
	*) echo "  dense: $line"; return 1 ;;
	esac
	# Where the machine gives huge pages at all, hugepage then populate gets them.
	if [ "$(thp_mode)" = madvise ]; then
		[ "$line" = "dense present 8192/8192 flags hg locked 0 thp 1 huge yes" ] || {
			echo "  no huge pages after hugepage,populate: $line"; return 1; }
	fi
	report pact || return 1
	$Q "$WORK/pact.json" \
		'site(proc(r), "populate_site")["prefaulted_pages"] == 256' \
		'site(proc(r), "populate_read_site")["prefaulted_pages"] == 256' \
		'site(proc(r), "hugepage_site")["prefaulted_pages"] == 0' \
		'site(proc(r), "hugepage_site")["policy"] == "hugepage if site=hugepage_site"' \
		'site(proc(r), "dense_site")["prefaulted_pages"] == 16384' \
		'site(proc(r), "mlock_site")["prefaulted_pages"] == 4096' \
		'site(proc(r), "mlock_site")["policy_failures"] == {}' \
		'site(proc(r), "malloc_site")["prefaulted_pages"] == 767' \
		'site(proc(r), "file_site")["prefaulted_pages"] == 64' \
		'site(proc(r), "file_site")["policy"] == "populate_read,willneed if kind=mmap-file"' \
		'sum(s["prefaulted_pages"] for s in sites(proc(r), "size_site")) == 6144' \
		'sum(s["policy_applications"] for s in sites(proc(r), "size_site") if s["policy"]) == 1' \
		'all(s["policy_failures"] == {} for s in proc(r)["sites"] if s["policy"])'
}

# module= holds for the object of the immediate caller: the program's own sites, not libc's.
t_policy_module_condition() {
	head -c $((64 * 4096)) /dev/urandom >"$WORK/pmod.file"
	(cd "$WORK" && PFSHIM_QUIET=1 PFSHIM_POLICY='populate_read if module=policy_act*' PFSHIM_OUT="$WORK/pmod" \
		LD_PRELOAD=$LIB $T/policy_actions "$WORK/pmod.file" >"$WORK/pmod.out") || return 1
	[ "$(grep -c 'present \([0-9]*\)/\1 ' "$WORK/pmod.out")" = 12 ] || { echo "  module=policy_act*:"; cat "$WORK/pmod.out"; return 1; }
	(cd "$WORK" && PFSHIM_QUIET=1 PFSHIM_POLICY='populate_read if module=libc.so*' PFSHIM_OUT="$WORK/pmod2" \
		LD_PRELOAD=$LIB $T/policy_actions "$WORK/pmod.file" >"$WORK/pmod2.out") || return 1
	[ "$(grep -c 'present 0/' "$WORK/pmod2.out")" = 12 ] || { echo "  module=libc.so*:"; cat "$WORK/pmod2.out"; return 1; }
}

# Unprivileged, mlock beyond RLIMIT_MEMLOCK fails: one line, a logged failure, the program runs on.
needs_root t_policy_mlock_unprivileged_fails_logged
t_policy_mlock_unprivileged_fails_logged() {
	local d=$WORK/nobody-policy
	mkdir -p "$d" && head -c $((64 * 4096)) /dev/urandom >"$d/f" && chmod 644 "$d/f"
	(ulimit -l 1024 && export PFSHIM_POLICY='mlock if site=mlock_site' && run_as_nobody "$d" logs $T/policy_actions "$d/f") || return 1
	grep -q '^mlock present 0/4096 flags - locked 0 ' "$d/logs.out" &&
		grep -q '^populate present 0/256 flags - locked 0 ' "$d/logs.out" || { cat "$d/logs.out"; return 1; }
	[ "$(grep -c '^pfshim: policy: mlock failed on 16384 KiB of a mmap allocation (Cannot allocate memory)' "$d/logs.err")" = 1 ] || {
		echo "  expected one line for the failed mlock:"; cat "$d/logs.err"; return 1; }
	"$CLI" report --format json "$d/logs" >"$d/r.json" || return 1
	$Q "$d/r.json" \
		'site(proc(r), "mlock_site")["policy_failures"]["mlock"]["count"] == 1' \
		'site(proc(r), "mlock_site")["policy_failures"]["mlock"]["error"] == "Cannot allocate memory"' \
		'site(proc(r), "mlock_site")["prefaulted_pages"] == 0'
}

# pfshim record --policy: the same as the variable.
t_policy_record_option() {
	(cd "$WORK" && "$CLI" record -o "$WORK/prec" --policy 'populate if site=storm_site' -- $T/policy_storm \
		>"$WORK/prec.out" 2>"$WORK/prec.err") || { cat "$WORK/prec.err"; return 1; }
	grep -q 'policy: populate if site=storm_site' "$WORK/prec.err" || { head -40 "$WORK/prec.err"; return 1; }
	report prec || return 1
	$Q "$WORK/prec.json" 'site(proc(r), "storm_site")["prefaulted_pages"] >= 4000' \
		'site(proc(r), "storm_site")["first_touch_faults"] == 0'
}

# The example whose touch phase a policy speeds up (docs/policy.md): the table's faults move into
# its allocation (times are printed, not checked: timing goals live in bench/).
t_policy_prefault_example() {
	(cd "$WORK" && PFSHIM_QUIET=1 PFSHIM_POLICY='populate if site=table_site' PFSHIM_OUT="$WORK/pex" \
		LD_PRELOAD=$LIB $BUILD/examples/prefault >"$WORK/pex.out" 2>"$WORK/pex.err") || { cat "$WORK/pex.err"; return 1; }
	grep -q '^table_site: 256 MiB filled (checksum 5c7df68000000)$' "$WORK/pex.out" || { cat "$WORK/pex.out"; return 1; }
	report pex || return 1
	local exact='== 65535'
	thp_always && exact='>= 65000'
	$Q "$WORK/pex.json" 'site(proc(r), "table_site")["first_touch_faults"] == 0' \
		"site(proc(r), \"table_site\")[\"prefaulted_pages\"] $exact"
}

# A library loaded with dlopen after the first lookups: its symbols are read when it appears (site=,
# from .dynsym: Debian's libz is stripped), and module= names it.
t_policy_dlopened_library() {
	run_policy pdl 'populate if site=deflateInit2_' $T/hostile dlopen || return 1
	grep -q 'no libz' "$WORK/pdl.out" && skip "no libz.so.1 to dlopen"
	report pdl || return 1
	$Q "$WORK/pdl.json" \
		'len([s for s in proc(r)["sites"] if s["policy"]]) >= 3' \
		'all(s["frames"][0]["module"].startswith("libz.so") for s in proc(r)["sites"] if s["policy"])' \
		'all(s["policy"] == "populate if site=deflateInit2_" for s in proc(r)["sites"] if s["policy"])' \
		'sum(s["prefaulted_pages"] for s in proc(r)["sites"]) >= 3 * 15' \
		'site(proc(r), "hostile_site")["policy"] is None' || return 1
	run_policy pdlm 'populate_read if module=libz.so*' $T/hostile dlopen || return 1
	report pdlm || return 1
	$Q "$WORK/pdlm.json" \
		'len([s for s in proc(r)["sites"] if s["policy"]]) >= 3' \
		'all(s["frames"][0]["module"].startswith("libz.so") for s in proc(r)["sites"] if s["policy"])'
}

# A stripped library's static functions come from its separate debug file (found by build-id), as
# the analyzer names them: opendir's internal __alloc_dir is in libc's .symtab, not its .dynsym.
t_policy_debug_file_symbols() {
	local id
	id=$(readelf -n /lib/x86_64-linux-gnu/libc.so.6 2>/dev/null | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
	[ -n "$id" ] || { echo "  libc has no build id here"; return 1; }
	# libc6-dbg: installed by make check (tools/deps.sh)
	[ -f "/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug" ] || {
		echo "  no debug file for libc (build id $id): \`make check\` installs libc6-dbg"; return 1; }
	nm -D /lib/x86_64-linux-gnu/libc.so.6 | grep -q ' __alloc_dir$' && { echo "  __alloc_dir is exported here"; return 1; }
	mkdir -p "$WORK/pdbg.d" && touch "$WORK/pdbg.d/a" "$WORK/pdbg.d/b"
	run_policy pdbg 'hugepage if site=__alloc_dir' ls "$WORK/pdbg.d" || return 1
	report pdbg || return 1
	$Q "$WORK/pdbg.json" 'site(proc(r), "__alloc_dir")["policy"] == "hugepage if site=__alloc_dir"' \
		'site(proc(r), "__alloc_dir")["policy_failures"] == {}'
}
