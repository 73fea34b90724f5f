# tools/: the debugging dump reads fault events with the log's own page size.
t_pfsdump_page_size() {
	$PY "$ROOT/tests/lib/test_pfsdump.py"
}
