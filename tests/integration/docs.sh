# man_renders PAGE: man -l renders PAGE without a warning.
man_renders() {
	need man man-db
	local warn
	warn=$(man -l "$1" 2>&1 >/dev/null)
	[ -z "$warn" ] || { echo "  man -l $1 warns:"; echo "$warn" | head -10; return 1; }
}

# Documentation follows the code: every variable of the shim's table is in its man page.
t_docs_name_every_variable() {
	local v missing=""
	for v in $(grep -o 'OPT("PFSHIM_[A-Z_]*"' "$ROOT/preload/config.c" | grep -o 'PFSHIM_[A-Z_]*'); do
		grep -q "^\.B $v\$" "$ROOT/docs/libpfshim.7" || missing="$missing $v"
	done
	[ -z "$missing" ] || { echo "  not in docs/libpfshim.7:$missing"; return 1; }
	man_renders "$ROOT/docs/libpfshim.7"
}

# Every option that pfshim --help prints is in the man page, which renders.
t_docs_man_page_has_every_option() {
	local o missing=""
	for o in $("$CLI" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
		grep -qF -- "$(echo "$o" | sed 's/-/\\-/g')" "$ROOT/docs/pfshim.1" || missing="$missing $o"
	done
	[ -z "$missing" ] || { echo "  not in docs/pfshim.1:$missing"; return 1; }
	man_renders "$ROOT/docs/pfshim.1"
}
