# What the analyzer writes goes where the user said, never through another user's link.

# Another user plants a symlink where root's report is to go (a directory that user owns, so the
# kernel's protected_symlinks, which covers sticky world-writable directories only, does not stop
# it): the report is refused and the file the link points at is untouched.
t_report_output_never_follows_a_planted_symlink() {
	[ "$(id -u)" = 0 ] || skip "planting a link as another user needs root"
	run_both outlink $T/three_sites || return 1
	local d=$WORK/outlink-dir
	mkdir -p "$d" && chown nobody "$d" && chmod 755 "$d" && chmod 755 "$WORK"
	printf 'root only\n' >"$WORK/outlink-victim" && chmod 600 "$WORK/outlink-victim"
	setpriv --reuid=nobody --regid=nogroup --clear-groups ln -s "$WORK/outlink-victim" "$d/report.txt" || {
		echo "  could not plant the link as nobody"; return 1; }
	local f
	for f in text json svg; do
		"$CLI" report --format $f -o "$d/report.txt" "$WORK/outlink" >/dev/null 2>"$WORK/outlink.err"
		local rc=$?
		[ $rc = 1 ] && grep -q "cannot write '$d/report.txt': it is a symbolic link" "$WORK/outlink.err" || {
			echo "  --format $f: rc=$rc:"; cat "$WORK/outlink.err"; return 1; }
		[ "$(cat "$WORK/outlink-victim")" = "root only" ] || { echo "  the link's target was written"; return 1; }
	done
	"$CLI" diff -o "$d/report.txt" "$WORK/outlink" "$WORK/outlink" >/dev/null 2>&1
	[ $? = 1 ] && [ "$(cat "$WORK/outlink-victim")" = "root only" ] || { echo "  diff -o followed the link"; return 1; }
	# a file of another user's is not the user's to overwrite either
	setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c "echo theirs > '$d/theirs.txt'"
	"$CLI" report -o "$d/theirs.txt" "$WORK/outlink" >/dev/null 2>"$WORK/outlink.err"
	[ $? = 1 ] && [ "$(cat "$d/theirs.txt")" = theirs ] && grep -q 'belongs to another user' "$WORK/outlink.err" || {
		echo "  another user's file was overwritten:"; cat "$WORK/outlink.err"; return 1; }
	# the user's own file is replaced, whole
	printf 'old old old old old old old old old old old old old old old old old old\n%.0s' $(seq 1 500) >"$WORK/outlink-mine.txt"
	"$CLI" report -o "$WORK/outlink-mine.txt" "$WORK/outlink" || return 1
	head -1 "$WORK/outlink-mine.txt" | grep -q '^# pfshim report' && ! grep -q '^old' "$WORK/outlink-mine.txt" || {
		echo "  the user's own file was not replaced whole"; return 1; }
}
