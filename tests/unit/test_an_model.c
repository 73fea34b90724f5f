/*
 * The run model: site aggregation (ALLOC records and COUNTERS slots), module
 * lookup by address and seq, large blocks replayed in seq order, the process
 * tree, and what a corrupt file leaves.
 */
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

static void load(struct pfs_run *run, struct lb *b, const char *name)
{
	assert_int_equal(pfs_model_load_buffer(run, b->buf, b->len, name), 0);
}

static void test_sites_aggregate(void **state)
{
	static const char cmd[] = "app\0--fast\0";
	struct pfs_counter_slot slots1[3] = {
		{.stack = 1, .kind = PFS_KIND_MALLOC, .count = 10, .bytes = 100},
		{.stack = 0, .kind = PFS_KIND_MALLOC, .count = 99, .bytes = 99}, /* unused */
		{.stack = 1, .kind = PFS_KIND_CALLOC, .count = 2, .bytes = 64},
	};
	struct pfs_counter_slot slots2[1] = {
		{.stack = 1, .kind = PFS_KIND_MALLOC, .count = 5, .bytes = 50},
	};
	uint64_t f1[1] = {0x1000}, f2[1] = {0x2000};
	struct pfs_run run;
	struct pfs_site *s;
	struct pfs_proc *p;
	struct lb b;

	(void)state;
	lb_init(&b, 100, 5);
	lb_proc_start(&b, 100, 1, 5, 0, "/usr/bin/app", cmd, sizeof(cmd) - 1);
	lb_stack(&b, 1, 1, f1, 1);
	lb_stack(&b, 2, 2, f2, 1);
	lb_counters(&b, slots1, 3);
	lb_next_block(&b);	/* another thread's block */
	lb_counters(&b, slots2, 1);
	lb_alloc(&b, 3, 1, PFS_KIND_MALLOC, 0x100000, 1 << 20, 1 << 20);
	lb_alloc(&b, 4, 2, PFS_KIND_MMAP, 0x200000, 3 << 20, 3 << 20);
	lb_proc_end(&b, 5, 0, PFS_END_EXIT);

	pfs_model_init(&run, NULL);
	load(&run, &b, "a.pfslog");
	assert_int_equal(pfs_model_finish(&run), 0);
	assert_int_equal(run.nprocs, 1);
	assert_int_equal(run.errors, 0);
	p = run.procs[0];
	assert_string_equal(p->command, "app --fast");
	assert_int_equal(p->argc, 2);
	assert_true(p->ended);
	assert_int_equal(p->nsites, 3);

	/* two slots and an ALLOC for (1, malloc): summed */
	s = pfs_model_site(p, 1, PFS_KIND_MALLOC);
	assert_non_null(s);
	assert_int_equal(s->allocations, 10 + 5 + 1);
	assert_int_equal(s->bytes_allocated, 100 + 50 + (1 << 20));
	/* the same stack through calloc is another site */
	s = pfs_model_site(p, 1, PFS_KIND_CALLOC);
	assert_non_null(s);
	assert_int_equal(s->allocations, 2);
	assert_int_equal(s->bytes_allocated, 64);
	/* the slot with stack 0 counted nowhere */
	assert_null(pfs_model_site(p, 0, PFS_KIND_MALLOC));

	/* ranked by bytes (no faults yet): mmap 3 MiB, malloc ~1 MiB, calloc */
	assert_int_equal(p->ranked[0]->key.stack, 2);
	assert_int_equal(p->ranked[1]->key.kind, PFS_KIND_MALLOC);
	assert_int_equal(p->ranked[2]->key.kind, PFS_KIND_CALLOC);
	assert_int_equal(p->totals.allocations, 16 + 2 + 1);
	assert_int_equal(p->totals.bytes_allocated, 150 + 64 + (1 << 20) + (3 << 20));
	pfs_model_free(&run);
	lb_release(&b);
}

/*
 * TOUCH records' faults: a record of pages mapped by a fault counted
 * before (the rest of a huge page, the pages a read fault mapped around its
 * own) says so with PFS_TOUCH_FAULTS and 0 faults; without the flag, 0 is
 * a shim before the faults field (one fault a page).
 */
static void test_touch_faults_zero(void **state)
{
	static const char cmd[] = "app\0";
	uint64_t f1[1] = {0x1000}, f2[1] = {0x2000};
	struct pfs_run run;
	struct lb b;

	(void)state;
	lb_init(&b, 100, 5);
	lb_proc_start(&b, 100, 1, 5, 0, "/usr/bin/app", cmd, sizeof(cmd) - 1);
	lb_stack(&b, 1, 1, f1, 1);
	lb_stack(&b, 2, 2, f2, 1);
	lb_alloc(&b, 3, 1, PFS_KIND_MMAP_FILE, 0x100000, 64 << 12, 64 << 12);
	lb_alloc(&b, 4, 2, PFS_KIND_MMAP, 0x200000, 64 << 12, 64 << 12);
	lb_touch_faults(&b, 10, 3, 1, PFS_KIND_MMAP_FILE, 16, 1, PFS_TOUCH_FAULTS);
	lb_touch_faults(&b, 11, 3, 1, PFS_KIND_MMAP_FILE, 15, 0, PFS_TOUCH_FAULTS);
	lb_touch_faults(&b, 12, 4, 2, PFS_KIND_MMAP, 7, 0, 0); /* an older shim's */
	lb_proc_end(&b, 5, 0, PFS_END_EXIT);
	pfs_model_init(&run, NULL);
	load(&run, &b, "a.pfslog");
	assert_int_equal(pfs_model_finish(&run), 0);
	const struct pfs_site *file = pfs_model_site(run.procs[0], 1, PFS_KIND_MMAP_FILE);
	const struct pfs_site *anon = pfs_model_site(run.procs[0], 2, PFS_KIND_MMAP);
	assert_non_null(file);
	assert_non_null(anon);
	assert_int_equal(file->first_touch_faults, 1);
	assert_int_equal(file->first_touch_pages, 31);
	assert_int_equal(anon->first_touch_faults, 7);
	assert_int_equal(anon->first_touch_pages, 7);
	pfs_model_free(&run);
	lb_release(&b);
}

static void test_module_lookup_by_seq(void **state)
{
	struct pfs_run run;
	const struct pfs_module *m;
	struct pfs_proc *p;
	struct lb b;

	(void)state;
	lb_init(&b, 7, 0);
	lb_proc_start(&b, 7, 1, 0, 0, "/bin/x", "x", 2);
	lb_module(&b, 1, 1, 0x400000, 0x400000, 0x401000, "/bin/x", NULL, 0);
	/* a plugin at seq 10, unloaded at 20, another one in its place at 30 */
	lb_module(&b, 30, 3, 0x7f0000000000, 0x7f0000000000, 0x7f0000010000, "/lib/b.so", NULL, 0);
	lb_unload(&b, 20, 2);	/* the file order is not the seq order */
	lb_module(&b, 10, 2, 0x7f0000000000, 0x7f0000000000, 0x7f0000008000, "/lib/a.so", NULL, 0);
	pfs_model_init(&run, NULL);
	load(&run, &b, "m.pfslog");
	assert_int_equal(pfs_model_finish(&run), 0);
	p = run.procs[0];

	m = pfs_model_module_at(p, 0x400123, 5);
	assert_non_null(m);
	assert_string_equal(m->path, "/bin/x");
	m = pfs_model_module_at(p, 0x7f0000000100, 15);
	assert_non_null(m);
	assert_string_equal(m->path, "/lib/a.so");
	m = pfs_model_module_at(p, 0x7f0000000100, 35);
	assert_non_null(m);
	assert_string_equal(m->path, "/lib/b.so");
	/* only b.so ever covered this address */
	m = pfs_model_module_at(p, 0x7f000000c000, 35);
	assert_non_null(m);
	assert_string_equal(m->path, "/lib/b.so");
	/* [start, end): the end is outside */
	assert_null(pfs_model_module_at(p, 0x401000, 5));
	assert_null(pfs_model_module_at(p, 0x1234, 5));
	pfs_model_free(&run);
	lb_release(&b);
}

static void test_large_blocks_in_seq_order(void **state)
{
	uint64_t f[1] = {0x1};
	struct pfs_run run;
	struct pfs_proc *p;
	struct lb b;

	(void)state;
	lb_init(&b, 9, 0);
	lb_proc_start(&b, 9, 1, 0, 0, "/bin/y", "y", 2);
	lb_stack(&b, 1, 1, f, 1);
	lb_stack(&b, 1, 2, f, 1);
	lb_stack(&b, 1, 3, f, 1);
	/* a free written (by another thread) before its alloc in the file */
	lb_free(&b, 20, 0x5000000, 0, PFS_KIND_MALLOC);
	lb_alloc(&b, 10, 1, PFS_KIND_MALLOC, 0x5000000, 100000, 100352);
	/* the same address reused later, still live at the end */
	lb_alloc(&b, 30, 1, PFS_KIND_MALLOC, 0x5000000, 200000, 200704);
	/* a 16-page mapping, its first 4 and last 4 pages unmapped */
	lb_alloc(&b, 40, 2, PFS_KIND_MMAP, 0x7000000, 16 * 4096, 16 * 4096);
	lb_free(&b, 41, 0x7000000, 4 * 4096, PFS_KIND_MMAP);
	lb_free(&b, 42, 0x7000000 + 12 * 4096, 4 * 4096, PFS_KIND_MMAP);
	/* a mapping moved by mremap and grown, then unmapped whole at its new place */
	lb_alloc(&b, 50, 3, PFS_KIND_MMAP, 0x9000000, 4096, 4096);
	lb_remap(&b, 51, 0x9000000, 4096, 0xa000000, 8192);
	lb_free(&b, 52, 0x9000000, 4096, PFS_KIND_MMAP);	/* nothing there any more */
	lb_proc_end(&b, 60, 0, PFS_END_EXIT);

	pfs_model_init(&run, NULL);
	load(&run, &b, "l.pfslog");
	assert_int_equal(pfs_model_finish(&run), 0);
	p = run.procs[0];
	assert_int_equal(pfs_model_site(p, 1, PFS_KIND_MALLOC)->bytes_live_at_end, 200000);
	assert_int_equal(pfs_model_site(p, 1, PFS_KIND_MALLOC)->live_blocks, 1);
	assert_int_equal(pfs_model_site(p, 2, PFS_KIND_MMAP)->bytes_live_at_end, 8 * 4096);
	assert_int_equal(pfs_model_site(p, 3, PFS_KIND_MMAP)->bytes_live_at_end, 8192);
	assert_int_equal(p->totals.bytes_live_at_end, 200000 + 8 * 4096 + 8192);
	pfs_model_free(&run);
	lb_release(&b);
}

static void test_process_tree(void **state)
{
	static const char pcmd[] = "sh\0-c\0run\0", ccmd[] = "sh\0-c\0run\0", ecmd[] = "ls\0-l\0";
	struct pfs_run run;
	struct pfs_proc *parent, *child, *image;
	struct lb a, c, e;

	(void)state;
	/* loaded in an order that is not the start order */
	lb_init(&e, 51, 300);
	lb_proc_start(&e, 51, 50, 300, 1, "/bin/ls", ecmd, sizeof(ecmd) - 1);
	lb_proc_end(&e, 9, 0, PFS_END_EXIT);
	lb_init(&c, 51, 200);
	lb_proc_start(&c, 51, 50, 200, 0, "/bin/sh", ccmd, sizeof(ccmd) - 1);
	lb_proc_end(&c, 8, 0, PFS_END_EXEC);
	lb_init(&a, 50, 100);
	lb_proc_start(&a, 50, 1, 100, 0, "/bin/sh", pcmd, sizeof(pcmd) - 1);
	lb_fork(&a, 3, 51);	/* and no PROC_END: killed */

	pfs_model_init(&run, NULL);
	load(&run, &e, "e.pfslog");
	load(&run, &c, "c.pfslog");
	load(&run, &a, "a.pfslog");
	assert_int_equal(pfs_model_finish(&run), 0);
	assert_int_equal(run.nprocs, 3);
	parent = run.procs[0];
	child = run.procs[1];
	image = run.procs[2];
	assert_int_equal(parent->pid, 50);
	assert_int_equal(child->pid, 51);
	assert_int_equal(image->exec_gen, 1);
	assert_string_equal(image->command, "ls -l");

	assert_null(parent->parent);
	assert_ptr_equal(child->parent, parent);
	assert_false(child->via_exec);
	assert_ptr_equal(child->fork_parent, parent);
	assert_int_equal(child->fork_seq, 3);
	assert_ptr_equal(image->parent, child);
	assert_true(image->via_exec);
	assert_null(image->fork_parent);
	assert_int_equal(parent->nkids, 1);
	assert_int_equal(parent->nchildren, 1);
	assert_int_equal(parent->children[0].pid, 51);

	assert_false(parent->ended);
	assert_true(child->ended);
	assert_false(child->have_status);	/* an exec has no exit status */
	assert_int_equal(run.errors, 0);	/* a missing PROC_END is no error... */
	assert_int_equal(run.warnings.n, 1);	/* ...but worth a warning */
	assert_non_null(strstr(run.warnings.msgs[0], "did not end normally"));
	pfs_model_free(&run);
	lb_release(&a);
	lb_release(&c);
	lb_release(&e);
}

static void test_stack_inherited_from_fork_parent(void **state)
{
	uint64_t f[2] = {0x400100, 0x400200};
	const struct pfs_proc *owner = NULL;
	const struct pfs_stack *st;
	struct pfs_run run;
	struct lb a, c;

	(void)state;
	lb_init(&a, 60, 10);
	lb_proc_start(&a, 60, 1, 10, 0, "/bin/p", "p", 2);
	lb_stack(&a, 1, 4, f, 2);
	lb_fork(&a, 2, 61);
	lb_init(&c, 61, 20);
	lb_proc_start(&c, 61, 60, 20, 0, "/bin/p", "p", 2);
	lb_alloc(&c, 3, 4, PFS_KIND_MALLOC, 0x1000, 10, 16);

	pfs_model_init(&run, NULL);
	load(&run, &a, "a.pfslog");
	load(&run, &c, "c.pfslog");
	assert_int_equal(pfs_model_finish(&run), 0);
	st = pfs_model_stack(run.procs[1], 4, &owner);
	assert_non_null(st);
	assert_ptr_equal(owner, run.procs[0]);
	assert_int_equal(st->nframes, 2);
	assert_null(pfs_model_stack(run.procs[0], 5, NULL));
	pfs_model_free(&run);
	lb_release(&a);
	lb_release(&c);
}

/*
 * A forked child's file holds its image exec'd too (log format 2): two
 * processes of the report, the second under the first by exec, each with
 * its own stacks (the same id names other frames) and records.
 */
static void test_exec_image_in_the_same_file(void **state)
{
	static const char ccmd[] = "sh\0-c\0run\0", ecmd[] = "ls\0-l\0";
	uint64_t fc[2] = {0x400100, 0x400200}, fe[3] = {0x500100, 0x500200, 0x500300};
	struct pfs_run run;
	struct pfs_proc *child, *image;
	struct lb a, c;

	(void)state;
	lb_init(&a, 70, 100);
	lb_proc_start(&a, 70, 1, 100, 0, "/bin/sh", ccmd, sizeof(ccmd) - 1);
	lb_fork(&a, 3, 71);
	lb_proc_end(&a, 4, 0, PFS_END_EXIT);
	lb_init(&c, 71, 200);
	lb_proc_start(&c, 71, 70, 200, 0, "/bin/sh", ccmd, sizeof(ccmd) - 1);
	lb_stack(&c, 1, 4, fc, 2);
	lb_alloc(&c, 2, 4, PFS_KIND_MALLOC, 0x1000, 10, 16);
	lb_proc_end(&c, 3, 0, PFS_END_EXEC);
	lb_image(&c, 71, 300);
	lb_proc_start(&c, 71, 70, 300, 1, "/bin/ls", ecmd, sizeof(ecmd) - 1);
	lb_stack(&c, 1, 4, fe, 3);
	lb_alloc(&c, 2, 4, PFS_KIND_MALLOC, 0x2000, 20, 32);
	lb_alloc(&c, 3, 4, PFS_KIND_MALLOC, 0x3000, 20, 32);
	lb_proc_end(&c, 4, 0, PFS_END_EXIT);

	pfs_model_init(&run, NULL);
	load(&run, &c, "c.pfslog");
	load(&run, &a, "a.pfslog");
	assert_int_equal(pfs_model_finish(&run), 0);
	assert_int_equal(run.errors, 0);
	assert_int_equal(run.nprocs, 3);
	child = run.procs[1];
	image = run.procs[2];
	assert_int_equal(child->pid, 71);
	assert_int_equal(child->exec_gen, 0);
	assert_string_equal(child->command, "sh -c run");
	assert_int_equal(child->records, 4);
	assert_ptr_equal(child->fork_parent, run.procs[0]);
	assert_int_equal(image->pid, 71);
	assert_int_equal(image->exec_gen, 1);
	assert_int_equal(image->start_ns, 300);
	assert_true(image->file_flags & PFS_FILE_EXECED);
	assert_string_equal(image->command, "ls -l");
	assert_int_equal(image->records, 6); /* IMAGE, PROC_START, STACK, 2 ALLOC, PROC_END */
	assert_ptr_equal(image->parent, child);
	assert_true(image->via_exec);
	assert_true(child->ended);
	assert_true(image->ended);
	assert_int_equal(pfs_model_stack(child, 4, NULL)->nframes, 2);
	assert_int_equal(pfs_model_stack(image, 4, NULL)->nframes, 3);
	pfs_model_free(&run);
	lb_release(&a);
	lb_release(&c);
}

static void test_corrupt_and_foreign_files(void **state)
{
	struct pfs_counter_slot slot = {.stack = 1, .kind = PFS_KIND_MALLOC, .count = 3, .bytes = 30};
	uint64_t f[1] = {0x1};
	struct pfs_run run;
	struct lb b;
	size_t off;
	static const char junk[128] = "ELF? no, just bytes";

	(void)state;
	lb_init(&b, 70, 0);
	lb_proc_start(&b, 70, 1, 0, 0, "/bin/z", "z", 2);
	off = lb_stack(&b, 1, 1, f, 1);
	lb_next_block(&b);
	lb_counters(&b, &slot, 1);
	lb_proc_end(&b, 3, 0, PFS_END_EXIT);
	b.buf[off + 4] = 3;	/* the STACK's size becomes 3 */

	pfs_model_init(&run, NULL);
	load(&run, &b, "bad.pfslog");
	assert_int_equal(pfs_model_load_buffer(&run, junk, sizeof(junk), "junk.pfslog"), 0);
	assert_int_equal(pfs_model_finish(&run), 0);
	/* the foreign file gives no process, the damaged one keeps its other block */
	assert_int_equal(run.nprocs, 1);
	assert_int_equal(run.errors, 2);
	assert_int_equal(run.procs[0]->bad_records, 1);
	assert_int_equal(pfs_model_site(run.procs[0], 1, PFS_KIND_MALLOC)->allocations, 3);
	assert_true(run.procs[0]->ended);
	assert_non_null(strstr(run.warnings.msgs[0], "bad.pfslog: offset"));
	assert_non_null(strstr(run.warnings.msgs[1], "junk.pfslog"));
	pfs_model_free(&run);
	lb_release(&b);
}

/*
 * The arrays a long run fills with millions of elements: from malloc's to a
 * mapping of their own past PFS_AN_BIG bytes, 2 MiB aligned, moved (not
 * copied) when they outgrow the room reserved for them; contents kept.
 */
static void test_big_arrays_keep_their_contents(void **state)
{
	struct pfs_block_ev *v = NULL;
	size_t cap = 0, n = 3 * (PFS_AN_BIG / sizeof(*v)) + 17; /* past the first reservation too */

	(void)state;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pfs_an_reserve_big((void **)&v, &cap, i + 1, sizeof(*v), PFS_AN_BIG / sizeof(*v) + 5),
				 0);
		v[i].seq = i;
		v[i].time_ns = ~i;
		if (cap * sizeof(*v) > PFS_AN_BIG)
			assert_int_equal((uintptr_t)v % (2u << 20), 0);
	}
	assert_true(cap >= n);
	for (size_t i = 0; i < n; i++)
		if (v[i].seq != i || v[i].time_ns != ~i)
			fail_msg("element %zu lost in a move", i);
	pfs_an_release(v, cap, sizeof(*v));

	uint64_t *z = pfs_an_zalloc(PFS_AN_BIG / 8 + 1, 8);
	assert_non_null(z);
	assert_int_equal((uintptr_t)z % (2u << 20), 0);
	assert_int_equal(z[0] | z[PFS_AN_BIG / 8], 0);
	pfs_an_release(z, PFS_AN_BIG / 8 + 1, 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sites_aggregate),
		cmocka_unit_test(test_touch_faults_zero),
		cmocka_unit_test(test_module_lookup_by_seq),
		cmocka_unit_test(test_large_blocks_in_seq_order),
		cmocka_unit_test(test_process_tree),
		cmocka_unit_test(test_stack_inherited_from_fork_parent),
		cmocka_unit_test(test_exec_image_in_the_same_file),
		cmocka_unit_test(test_corrupt_and_foreign_files),
		cmocka_unit_test(test_big_arrays_keep_their_contents),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
