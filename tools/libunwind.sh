#!/bin/sh
# usage: tools/libunwind.sh DIR
# libunwind for the shim, built from Debian's own source of the version libunwind-dev installs
# (bookworm's 1.6.2-3: its upstream tarball and its patches, checked by their SHA-256) as a
# position-independent archive the shim links in, its names hidden (preload/exports.map).
# Writes DIR/link, the shim's linker arguments for libunwind: DIR/libunwind.a, or -lunwind
# (the shared library) when the source cannot be had or built, with one line saying why.
#
# Why not the shared libunwind.so.8 (issue 21; docs/performance.md, "Process starts, twelfth pass"):
# - a preloaded library's dependencies join the program's global scope, so Debian's
#   libunwind.so.8 (built with --enable-cxx-exceptions) then defines _Unwind_RaiseException
#   for every object that does not link libgcc_s itself before it: a C program's C++ library,
#   a C++ module Python or a server loads.  Their exceptions unwound through it, each one
#   50-70 times as slow (200,000 throws: 0.15 s natively, 11.2 s under the shim);
# - loading it and liblzma (its MiniDebugInfo reader) took 0.2 ms of every process's start.
# Debian ships no position-independent libunwind.a to link into a shared object.
set -u
dir=$(mkdir -p "$1" && cd "$1" && pwd) || exit 1
ver=1.6.2
deb=1.6.2-3
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
orig=libunwind_$ver.orig.tar.gz
patches=libunwind_$deb.debian.tar.xz
sums="4a6aec666991fb45d0889c44aede8ad6eb108071c3554fcdff671f9c94794976  $orig
4f9133ec35c56d6e964db572ddd9bc8c61e393589d1f1989e15e60390db2a97a  $patches"

shared() {
	echo "pfshim: the shim links the shared libunwind ($1); a program's C++ exceptions may then unwind through it (tools/libunwind.sh; rm -r $dir to try again)" >&2
	echo "-lunwind" >"$dir/link"
	exit 0
}

[ "${PFSHIM_UNWIND:-}" = shared ] && shared "PFSHIM_UNWIND=shared"
# The shim compiles against libunwind-dev's header: the archive must be that version.
have=$(printf '#include <libunwind.h>\n' | ${CC:-cc} -E -dM -DUNW_LOCAL_ONLY -x c - 2>/dev/null |
	awk '$2 == "UNW_VERSION_MAJOR" { a = $3 } $2 == "UNW_VERSION_MINOR" { b = $3 }
		$2 == "UNW_VERSION_EXTRA" { c = $3 } END { print a "." b "." c }')
[ "$have" = "$ver" ] || shared "libunwind-dev's header is version '$have', the source known here $ver"

cd "$dir" || exit 1
for f in $orig $patches; do
	[ -s "dl/$f" ] && continue
	mkdir -p dl
	curl -sSfL --retry 2 --max-time 120 -o "dl/$f.part" "$mirror/pool/main/libu/libunwind/$f" 2>err.txt &&
		mv "dl/$f.part" "dl/$f" || shared "cannot download $f from $mirror: $(tail -n 1 err.txt)"
done
rm -f err.txt
(cd dl && echo "$sums" | sha256sum -c --quiet >/dev/null 2>&1) || {
	rm -rf dl
	shared "the downloaded source is not Debian's $deb (SHA-256)"
}

echo "  BUILD   libunwind $deb from Debian's source ($dir/build.log)" >&2
rm -rf src && mkdir src || exit 1
(
	cd src && tar xzf ../dl/$orig && tar xJf ../dl/$patches -C libunwind-$ver && cd libunwind-$ver &&
		for p in $(grep -v '^#' debian/patches/series); do patch -p1 -s <"debian/patches/$p" || exit 1; done &&
		./configure -q --disable-shared --enable-static --with-pic --disable-minidebuginfo \
			--disable-zlibdebuginfo --disable-coredump --disable-ptrace --disable-setjmp --disable-tests \
			--disable-documentation --disable-cxx-exceptions CC="${CC:-cc}" CFLAGS="-O2 -g" &&
		make -s -j"$(nproc 2>/dev/null || echo 2)" -C src libunwind.la
) >build.log 2>&1 || shared "its build failed: see $dir/build.log"
cp src/libunwind-$ver/src/.libs/libunwind.a libunwind.a || shared "no libunwind.a after its build"
rm -rf src
echo "$dir/libunwind.a" >link
