/*
 * The advisor: its rules (analyzer/advise.c) on made-up evidence, one case
 * per rule and its edges, and the evidence (analyzer/evidence.c) of a
 * hand-built fast-mode log whose times and sizes are known.
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

#include "../../analyzer/advise.h"
#include "../../analyzer/evidence.h"
#include "../../analyzer/model.h"
#include "../../analyzer/storms.h"
#include "test_an_logbuild.h"

#define MS 1000000ull
#define MiB (1ull << 20)
#define T0 (1000 * MS)

/* 32 MiB malloc'd, all touched within 12 ms of the allocation at 600k pages/s, living 0.5 s. */
static struct pfs_evidence dense_burst(void)
{
	return (struct pfs_evidence){
		.tracked_allocs = 1, .requested_bytes = 32 * MiB, .requested_pages = 8192,
		.min_size = 32 * MiB, .touched_pages = 8192, .touched_bytes = 32 * MiB,
		.tracked_touched_pages = 8192, .density = 1.0, .timed_allocs = 1,
		.first_touch_lo_ns = 0, .first_touch_hi_ns = 12 * MS, .spread_hi_ns = 12 * MS,
		.lifetime_ns = 500 * MS, .touch_rate = 600000, .storm_rate = 640000,
		.page_size = 4096,
	};
}

static struct pfs_adv_site site(const struct pfs_evidence *e, uint32_t kind, const char *fn)
{
	return (struct pfs_adv_site){.ev = e, .kind = kind, .function = fn,
				     .first_touch_faults = e->touched_pages, .cow_faults = e->cow_pages};
}

static void test_dense_burst_populate(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MALLOC, "load_table");
	struct pfs_advice a;

	(void)state;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_POPULATE);
	assert_string_equal(a.rule, "populate if site=load_table");
	assert_int_equal(a.faults_avoided, 8192);
	/* the name is in another site's stack too: the size narrows the rule */
	s.name_shared = true;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "populate if site=load_table,size>=32M");
}

static void test_burst_edges(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MALLOC, "f");
	struct pfs_advice a;

	(void)state;
	/* touched slowly: no storm of note, 2000 pages/s */
	e.touch_rate = 2000;
	e.storm_rate = 2500;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "gradually"));
	assert_string_equal(a.rule, "");
	/* fast again, but first touched 300 ms after a 500 ms life began */
	e = dense_burst();
	e.first_touch_lo_ns = 300 * MS;
	e.first_touch_hi_ns = 310 * MS;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "long after"));
	/* 40% touched: neither dense nor sparse */
	e = dense_burst();
	e.tracked_touched_pages = 8192 * 4 / 10;
	e.density = 0.4;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	/* fast mode saw it all in one scan 2 s on: no burst known, and the advice says why */
	e = dense_burst();
	e.coarse = true;
	e.spread_hi_ns = e.first_touch_hi_ns = 2000 * MS;
	e.lifetime_ns = 3000 * MS;
	e.touch_rate = 8192 / 2.0;	/* the lower bound: pages over the whole interval */
	e.storm_rate = 0;
	pfs_adv_site(&s, PFS_THP_NEVER, &a);	/* (under "madvise": hugepage, with the same note) */
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "in one scan, up to 2000.0 ms after the allocation"));
	assert_non_null(strstr(a.reason, "--mode exact"));
	/* blanks and glob characters in a name: a glob that matches only it */
	e = dense_burst();
	s.function = "operator new[]";
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_POPULATE);
	assert_string_equal(a.rule, "populate if site=operator?new\\[\\]");
	/* a name longer than a glob may be: cut, ending in '*' */
	s.function = "Pool<std::basic_string<char, std::char_traits<char>, std::allocator<char> > >::grab";
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "populate if site=Pool<std::basic_string<char??std::char_traits<char>??std::allo*");
	/* no name at all: the advice stands, without a rule */
	s.function = NULL;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_POPULATE);
	assert_string_equal(a.rule, "");
	assert_non_null(strstr(a.expect, "no rule"));
}

static void test_sparse_names_waste(void **state)
{
	struct pfs_evidence e = {
		.tracked_allocs = 1, .requested_bytes = 64 * MiB, .requested_pages = 16384,
		.min_size = 64 * MiB, .touched_pages = 64, .touched_bytes = 64 * 4096,
		.tracked_touched_pages = 64, .density = 64.0 / 16384, .timed_allocs = 1,
		.lifetime_ns = 2000 * MS, .touch_rate = 1e6, .page_size = 4096,
		.waste_if_populated = (16384 - 64) * 4096ull,
	};
	struct pfs_adv_site s = site(&e, PFS_KIND_MALLOC, "sparse_site");
	struct pfs_advice a;

	(void)state;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_SPARSE);
	assert_string_equal(a.rule, "");
	assert_int_equal(a.waste_bytes, (16384 - 64) * 4096ull);
	assert_non_null(strstr(a.reason, "do not populate"));
	assert_non_null(strstr(a.reason, "63.8 MiB resident"));
	/* THP "always": each touched 4 KiB could bring a 2 MiB page */
	pfs_adv_site(&s, PFS_THP_ALWAYS, &a);
	assert_string_equal(a.rule, "nohugepage if site=sparse_site");
	/* realloc asks again for what it moves: a growing block is not sparse */
	s.kind = PFS_KIND_REALLOC;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "realloc"));
	s.kind = PFS_KIND_MALLOC;
	/* small: not worth a word */
	e.requested_bytes = 1 * MiB;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_not_equal(a.what, PFS_ADVICE_SPARSE);
}

static void test_file_readahead(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MMAP_FILE, "map_input");
	struct pfs_advice a;

	(void)state;
	e.requested_bytes = e.min_size = 16 * MiB;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FILE);
	assert_string_equal(a.rule, "willneed if site=map_input,kind=mmap-file");
	/* too large to read ahead at once: sequential */
	e.requested_bytes = e.min_size = 1024 * MiB;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "sequential if site=map_input,kind=mmap-file");
	/* read in part: nothing (and never populate a file mapping) */
	e.density = 0.3;
	e.tracked_touched_pages = 2000;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
}

static void test_cow_after_fork(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MALLOC, "cow_site");
	struct pfs_advice a;

	(void)state;
	e.cow_pages = 8192;
	e.forks = 2;
	e.cow_per_fork = 4096;
	s.cow_faults = 8192;
	s.child_cow_faults = 8192;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_COW);
	assert_string_equal(a.rule, "");
	assert_non_null(strstr(a.reason, "4096 pages (16.0 MiB) copied per fork"));
	assert_non_null(strstr(a.expect, "in the child after fork"));
	/* the parent writes while a child shares: DONTFORK or layout */
	s.child_cow_faults = 0;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_non_null(strstr(a.expect, "MADV_DONTFORK"));
	assert_non_null(strstr(a.expect, "layout"));
	/* a few copies are no reason */
	e.cow_per_fork = 10;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_POPULATE);
}

static void test_hugepage(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MMAP, "arena_grow");
	struct pfs_advice a;

	(void)state;
	/* large, dense, long-lived, touched gradually: hugepage alone */
	e.lifetime_ns = 5000 * MS;
	e.touch_rate = 3000;
	e.storm_rate = 0;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_HUGEPAGE);
	assert_string_equal(a.rule, "hugepage if site=arena_grow");
	/* in a burst too: both, hugepage first */
	e.touch_rate = 600000;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "hugepage,populate if site=arena_grow");
	/* THP "never": the advice would do nothing */
	pfs_adv_site(&s, PFS_THP_NEVER, &a);
	assert_string_equal(a.rule, "populate if site=arena_grow");
	/* below four huge pages */
	e.min_size = 4 * MiB;
	e.touch_rate = 3000;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
}

/* lb_free with the FREE's time, which lifetimes end at. */
static void put_free_at(struct lb *b, uint64_t seq, uint64_t t, uint64_t addr)
{
	size_t off = lb_free(b, seq, addr, 0, PFS_KIND_MALLOC);

	((struct pfs_rec_free *)(void *)(b->buf + off))->time_ns = t;
}

/*
 * A log with known answers: 8 MiB allocated at +1 ms, 1024 pages found by
 * the scan at +10 ms and 1024 by the one at +20 ms, freed at +101 ms; and
 * 16 MiB allocated at +30 ms, 16 pages touched, never freed (the process
 * ends at +200 ms).
 */
static void test_evidence_from_log(void **state)
{
	static const char cmd[] = "app\0";
	struct pfs_run run;
	struct lb b;
	struct pfs_series ser;
	struct pfs_evidence *ev;
	const struct pfs_site *sites[2];

	(void)state;
	lb_init(&b, 42, T0);
	lb_proc_start(&b, 42, 1, T0, 0, "/usr/bin/app", cmd, sizeof(cmd) - 1);
	lb_alloc_at(&b, 1, T0 + 1 * MS, 2, PFS_KIND_MALLOC, 0x10000000, 8 * MiB);
	lb_touch(&b, T0 + 10 * MS, 1, 2, PFS_KIND_MALLOC, 1024, 0);
	lb_scan(&b, T0 + 10 * MS, 1024, PFS_SCAN_PERIODIC);
	lb_touch(&b, T0 + 20 * MS, 1, 2, PFS_KIND_MALLOC, 1024, 0);
	lb_scan(&b, T0 + 20 * MS, 1024, PFS_SCAN_PERIODIC);
	lb_alloc_at(&b, 3, T0 + 30 * MS, 3, PFS_KIND_MMAP, 0x20000000, 16 * MiB);
	lb_touch(&b, T0 + 40 * MS, 3, 3, PFS_KIND_MMAP, 16, 0);
	lb_scan(&b, T0 + 40 * MS, 16, PFS_SCAN_PERIODIC);
	put_free_at(&b, 4, T0 + 101 * MS, 0x10000000);
	lb_proc_end_at(&b, 5, T0 + 200 * MS);

	pfs_model_init(&run, NULL);
	assert_int_equal(pfs_model_load_buffer(&run, b.buf, b.len, "t.pfslog"), 0);
	assert_int_equal(pfs_model_finish(&run), 0);
	assert_int_equal(run.errors, 0);
	sites[0] = pfs_model_site(run.procs[0], 2, PFS_KIND_MALLOC);
	sites[1] = pfs_model_site(run.procs[0], 3, PFS_KIND_MMAP);
	assert_non_null(sites[0]);
	assert_non_null(sites[1]);
	assert_int_equal(pfs_storms_compute(run.procs[0], NULL, &ser), 0);
	for (size_t i = 0; i < ser.nstorms; i++)
		ser.storms[i].top_index = SIZE_MAX;
	assert_int_equal(pfs_evidence_compute(run.procs[0], &ser, sites, 2, &ev), 0);

	assert_int_equal(ev[0].requested_bytes, 8 * MiB);
	assert_int_equal(ev[0].touched_pages, 2048);
	assert_int_equal(ev[0].touched_bytes, 8 * MiB);
	assert_true(ev[0].density == 1.0);
	assert_true(ev[0].resident_share > 0.99 * 2048 / 2064 && ev[0].resident_share < 2048.0 / 2064 + 1e-9);
	/* first touch: between the allocation and the first scan (9 ms later) */
	assert_int_equal(ev[0].first_touch_lo_ns, 0);
	assert_int_equal(ev[0].first_touch_hi_ns, 9 * MS);
	/* the last first touch came in (10, 20] ms: spread at most 20 - 1 ms */
	assert_int_equal(ev[0].spread_hi_ns, 19 * MS);
	assert_int_equal(ev[0].spread_lo_ns, 0);	/* both could have come at 10 ms */
	assert_int_equal(ev[0].lifetime_ns, 100 * MS);
	assert_int_equal(ev[0].freed_allocs, 1);

	assert_int_equal(ev[1].requested_bytes, 16 * MiB);
	assert_int_equal(ev[1].tracked_touched_pages, 16);
	assert_int_equal(ev[1].waste_if_populated, 16 * MiB - 16 * 4096);
	/* never freed: it lived to the end */
	assert_int_equal(ev[1].lifetime_ns, 170 * MS);
	assert_int_equal(ev[1].freed_allocs, 0);
	assert_int_equal(ev[1].forks, 0);

	free(ev);
	pfs_storms_free(&ser);
	pfs_model_free(&run);
	lb_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dense_burst_populate),
		cmocka_unit_test(test_burst_edges),
		cmocka_unit_test(test_sparse_names_waste),
		cmocka_unit_test(test_file_readahead),
		cmocka_unit_test(test_cow_after_fork),
		cmocka_unit_test(test_hugepage),
		cmocka_unit_test(test_evidence_from_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
