#!/bin/sh
# usage: tools/deps.sh build|test|bench
# Checks the Debian packages of one set and installs the missing ones when run
# as root; otherwise prints the one apt-get line and fails.
#   build: what `make` and `make demo` need (the library, the analyzer, the examples; curl, xz-utils
#          and patch fetch and build libunwind from Debian's source: tools/libunwind.sh)
#   test:  what `make check` adds (cmocka, the real programs run under the shim, chromium
#          for the screenshots (python3-pil reads them), clang for the fuzzer, the tools the tests call)
#   bench: what `make bench` adds (bc; its peers perf and heaptrack)
set -u
case "${1:-}" in
build)
	PKGS="gcc make libunwind-dev uthash-dev libdw-dev libelf-dev libiberty-dev zlib1g-dev curl xz-utils patch" ;;
test)
	PKGS="libcmocka-dev python3 util-linux bsdutils procps binutils pkg-config man-db libc6-dbg
		git perl gawk xz-utils sqlite3 openssl redis-server redis-tools g++ golang-go libjemalloc-dev
		clang libclang-rt-14-dev chromium linux-perf elfutils python3-numpy python3-pil nodejs" ;;
bench)
	PKGS="bc python3 time linux-perf heaptrack" ;;
*)
	echo "usage: $0 build|test|bench" >&2
	exit 2 ;;
esac
missing=""
for p in $PKGS; do
	case "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "pfshim: missing $1 packages; run as root:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
echo "pfshim: installing $1 packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || exit 1
apt-get install -y -qq --no-install-recommends $missing >&2 || exit 1
