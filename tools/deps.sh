#!/bin/sh
# Checks the Debian packages pfshim builds and tests with; installs the
# missing ones when run as root, else prints the one apt-get line and fails.
set -u
PKGS="gcc make pkg-config libunwind-dev uthash-dev libcmocka-dev libdw-dev libelf-dev libiberty-dev zlib1g-dev g++ libjemalloc-dev elfutils python3 python3-numpy util-linux bc git perl gawk xz-utils sqlite3 redis-server redis-tools clang libclang-rt-14-dev chromium time"
missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "pfshim: missing build packages; run as root:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
echo "pfshim: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || exit 1
apt-get install -y -qq --no-install-recommends $missing >&2 || exit 1
