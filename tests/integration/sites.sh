# Call sites: what the unwinder and the site cache must get right.
# Sites of records (large blocks) are unwound every time: a wrapper reached from two callers at the
# same stack depth gives two sites, in every mode.
t_wrapper_sites_kept_apart() {
	run_both wrap $T/wrapper_sites || return 1
	report wrap || return 1
	$Q "$WORK/wrap.json" \
		'[s["allocations"] for s in proc(r)["sites"] if len(s["frames"]) > 1 and s["frames"][0]["function"] == "xmalloc" and s["frames"][1]["function"] == "site_one"] == [3]' \
		'[s["bytes_allocated"] for s in proc(r)["sites"] if len(s["frames"]) > 1 and s["frames"][0]["function"] == "xmalloc" and s["frames"][1]["function"] == "site_two"] == [3 * (2 << 20)]'
}

