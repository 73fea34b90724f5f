# Fidelity: the shim leaves the program's faults as the kernel takes them natively, and counts them.

# Exact mode resolves a read of a missing page the way this kernel does natively (zero page or a
# page of its own, probed at start): a read then a write costs the program the same faults as
# without the shim (it took twice as many where reads map fresh pages), and each page is one first
# touch.  The program prints its own fault count, so run_both compares them.
t_exact_read_then_write_faults_as_native() {
	RUN_ENV="PFSHIM_MODE=exact" run_both xrw $T/read_then_write 2000 || return 1
	report xrw || return 1
	$Q "$WORK/xrw.json" 'site(proc(r), "read_write_site")["first_touch_faults"] == 2000'
}
