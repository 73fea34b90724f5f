/* The analyzer and POLICY records: prefaulted pages and rule texts per site, failures, corrupt lengths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../analyzer/model.h"
#include "test_an_logbuild.h"

static void test_policy_records_per_site(void **state)
{
	uint64_t f1[1] = {0x1000}, f2[1] = {0x2000};
	struct pfs_run run;
	struct pfs_site *s;
	struct pfs_proc *p;
	struct lb b;

	(void)state;
	lb_init(&b, 100, 5);
	lb_proc_start(&b, 100, 1, 5, 0, "/usr/bin/app", "app", 3);
	lb_stack(&b, 1, 1, f1, 1);
	lb_stack(&b, 2, 2, f2, 1);
	lb_alloc(&b, 3, 1, PFS_KIND_MALLOC, 0x100000, 1 << 20, 1 << 20);
	lb_policy(&b, 3, 1, PFS_KIND_MALLOC, 0, 0x1, 255, 0, "populate if site=load_*");
	lb_alloc(&b, 4, 1, PFS_KIND_MALLOC, 0x300000, 1 << 20, 1 << 20);
	lb_policy(&b, 4, 1, PFS_KIND_MALLOC, 0, 0x1, 256, 0, "populate if site=load_*");
	lb_alloc(&b, 5, 1, PFS_KIND_MALLOC, 0x500000, 64 << 20, 64 << 20);
	lb_policy(&b, 5, 1, PFS_KIND_MALLOC, 1, 0x81, 16384, -ENOMEM, "populate,mlock if size>=64M");
	lb_alloc(&b, 6, 2, PFS_KIND_MMAP, 0x9000000, 1 << 20, 1 << 20);
	lb_proc_end(&b, 7, 0, PFS_END_EXIT);

	pfs_model_init(&run, NULL);
	assert_int_equal(pfs_model_load_buffer(&run, b.buf, b.len, "a.pfslog"), 0);
	assert_int_equal(pfs_model_finish(&run), 0);
	assert_int_equal(run.errors, 0);
	p = run.procs[0];
	s = pfs_model_site(p, 1, PFS_KIND_MALLOC);
	assert_non_null(s);
	assert_int_equal(s->prefaulted_pages, 255 + 256 + 16384);
	assert_int_equal(s->policy_applications, 3);
	/* each rule once, in the order first applied */
	assert_string_equal(s->policy, "populate if site=load_*; populate,mlock if size>=64M");
	assert_int_equal(s->policy_failures[7], 1);
	assert_int_equal(s->policy_error[7], -ENOMEM);
	assert_int_equal(s->policy_failures[0], 0);
	s = pfs_model_site(p, 2, PFS_KIND_MMAP);
	assert_non_null(s);
	assert_null(s->policy);
	assert_int_equal(s->prefaulted_pages, 0);
	assert_int_equal(p->totals.prefaulted_pages, 255 + 256 + 16384);
	pfs_model_free(&run);
	lb_release(&b);
}

/* Rule texts a corrupt or hostile log may hold: one that starts with the list's "; " separator
 * (once looped forever, found by the fuzzer) is kept once like any other. */
static void test_policy_rule_starting_with_separator(void **state)
{
	struct pfs_run run;
	struct pfs_site *s;
	struct lb b;

	(void)state;
	lb_init(&b, 100, 5);
	lb_proc_start(&b, 100, 1, 5, 0, "/usr/bin/app", "app", 3);
	lb_alloc(&b, 3, 1, PFS_KIND_MALLOC, 0x100000, 1 << 20, 1 << 20);
	lb_policy(&b, 3, 1, PFS_KIND_MALLOC, 0, 0x1, 1, 0, "; populate");
	lb_alloc(&b, 4, 1, PFS_KIND_MALLOC, 0x300000, 1 << 20, 1 << 20);
	lb_policy(&b, 4, 1, PFS_KIND_MALLOC, 0, 0x1, 1, 0, "; populate");
	lb_alloc(&b, 5, 1, PFS_KIND_MALLOC, 0x500000, 1 << 20, 1 << 20);
	lb_policy(&b, 5, 1, PFS_KIND_MALLOC, 0, 0x1, 1, 0, "hugepage");
	lb_proc_end(&b, 6, 0, PFS_END_EXIT);
	pfs_model_init(&run, NULL);
	assert_int_equal(pfs_model_load_buffer(&run, b.buf, b.len, "a.pfslog"), 0);
	assert_int_equal(pfs_model_finish(&run), 0);
	s = pfs_model_site(run.procs[0], 1, PFS_KIND_MALLOC);
	assert_non_null(s);
	assert_int_equal(s->policy_applications, 3);
	assert_string_equal(s->policy, "; populate; hugepage");
	pfs_model_free(&run);
	lb_release(&b);
}

/* A rule length past the record is a corrupt record, named with its offset; the rest is read. */
static void test_policy_rule_length_checked(void **state)
{
	uint64_t f1[1] = {0x1000};
	struct pfs_rec_policy r;
	struct pfs_run run;
	struct lb b;
	size_t off;

	(void)state;
	lb_init(&b, 100, 5);
	lb_proc_start(&b, 100, 1, 5, 0, "/usr/bin/app", "app", 3);
	lb_stack(&b, 1, 1, f1, 1);
	lb_alloc(&b, 3, 1, PFS_KIND_MALLOC, 0x100000, 1 << 20, 1 << 20);
	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_POLICY;
	r.stack = 1;
	r.kind = PFS_KIND_MALLOC;
	r.prefaulted_pages = 9;
	r.rule_len = 4000;
	off = lb_put(&b, &r, sizeof(r), "populate", 8);
	lb_proc_end(&b, 7, 0, PFS_END_EXIT);

	pfs_model_init(&run, NULL);
	assert_int_equal(pfs_model_load_buffer(&run, b.buf, b.len, "a.pfslog"), 0);
	assert_int_equal(pfs_model_finish(&run), 0);
	assert_int_equal(run.errors, 1);
	assert_int_equal(run.procs[0]->bad_records, 1);
	assert_int_equal(run.procs[0]->totals.prefaulted_pages, 0);
	assert_int_equal(pfs_model_site(run.procs[0], 1, PFS_KIND_MALLOC)->allocations, 1);
	char want[64];
	snprintf(want, sizeof(want), "offset %zu: POLICY rule length 4000", off);
	int seen = 0;
	for (size_t i = 0; i < run.warnings.n; i++)
		seen |= strstr(run.warnings.msgs[i], want) != NULL;
	assert_true(seen);
	pfs_model_free(&run);
	lb_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_records_per_site),
		cmocka_unit_test(test_policy_rule_length_checked),
		cmocka_unit_test(test_policy_rule_starting_with_separator),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
