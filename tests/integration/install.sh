# make install: the usual layout under DESTDIR and PREFIX, a pkg-config file whose Cflags find the
# installed header and whose "preload" names the installed shim, the man pages and the docs; the
# installed shim and analyzer work.  (make is told not to rebuild what the other tests run.)
t_install_layout() {
	need pkg-config pkg-config
	local d=$WORK/inst p=/opt/pfs f
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$ROOT" BUILD="$BUILD" DESTDIR="$d" PREFIX=$p \
		-o "$LIB" -o "$CLI" install >"$WORK/install.out" 2>&1 || { cat "$WORK/install.out"; return 1; }
	for f in lib/libpfshim.so bin/pfshim include/pfshim/log_format.h lib/pkgconfig/pfshim.pc \
		share/man/man1/pfshim.1 share/man/man7/libpfshim.7 share/doc/pfshim/README.md share/doc/pfshim/design.md; do
		[ -f "$d$p/$f" ] || { echo "  not installed: $p/$f"; find "$d" -type f; return 1; }
	done
	# as the installed system sees it (PREFIX), and as this test reaches it (under DESTDIR)
	[ "$(PKG_CONFIG_PATH=$d$p/lib/pkgconfig pkg-config --variable=preload pfshim)" = "$p/lib/libpfshim.so" ] || {
		echo "  preload: $(PKG_CONFIG_PATH=$d$p/lib/pkgconfig pkg-config --variable=preload pfshim)"; return 1; }
	local pc="env PKG_CONFIG_PATH=$d$p/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$d pkg-config"
	printf '#include <pfshim/log_format.h>\nint main(void) { return PFS_LOG_VERSION > 0 ? 0 : 1; }\n' >"$WORK/uses.c"
	cc $($pc --cflags pfshim) -o "$WORK/uses" "$WORK/uses.c" && "$WORK/uses" || {
		echo "  a program built with pkg-config --cflags pfshim:"; $pc --cflags pfshim; return 1; }
	(cd "$WORK" && PFSHIM_QUIET=1 PFSHIM_OUT="$WORK/logs" LD_PRELOAD="$d$p/lib/libpfshim.so" $T/three_sites >/dev/null)
	"$d$p/bin/pfshim" report --format json "$WORK/logs" >"$WORK/r.json" || return 1
	$Q "$WORK/r.json" 'site(proc(r), "site_alpha")["allocations"] == 3'
}
