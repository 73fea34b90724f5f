/*
 * Storm detection (analyzer/storms.c) on hand-built fast-mode logs: a burst
 * among quiet periodic scans, a burst found whole by one scan, and flat
 * rates (low, and high but steady) that are no storm.
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
#include "../../analyzer/storms.h"
#include "test_an_logbuild.h"

#define MS 1000000ull
#define T0 (1000 * MS)	/* the process start, CLOCK_MONOTONIC */

static struct pfs_proc *load(struct pfs_run *run, struct lb *b)
{
	pfs_model_init(run, NULL);
	assert_int_equal(pfs_model_load_buffer(run, b->buf, b->len, "t.pfslog"), 0);
	assert_int_equal(pfs_model_finish(run), 0);
	assert_int_equal(run->nprocs, 1);
	assert_int_equal(run->errors, 0);
	return run->procs[0];
}

static void start(struct lb *b)
{
	static const char cmd[] = "app\0";

	lb_init(b, 42, T0);
	lb_proc_start(b, 42, 1, T0, 0, "/usr/bin/app", cmd, sizeof(cmd) - 1);
}

/* A scanner thread every 10 ms for 1 s; site 1 touches `quiet` pages a scan, site 2 bursts. */
static void periodic(struct lb *b, uint32_t quiet, uint32_t burst, unsigned from, unsigned to)
{
	lb_alloc_at(b, 1, T0 + 1 * MS, 2, PFS_KIND_MMAP, 0x10000000, 64 << 20);
	for (unsigned i = 1; i <= 100; i++) {
		uint64_t t = T0 + i * 10 * MS;
		uint32_t n = quiet;

		if (quiet)
			lb_touch(b, t, 0, 1, PFS_KIND_MALLOC, quiet, 0);
		if (burst && i >= from && i < to) {
			lb_touch(b, t, 1, 2, PFS_KIND_MMAP, burst, 0);
			n += burst;
		}
		lb_scan(b, t, n, PFS_SCAN_PERIODIC);
	}
	lb_proc_end_at(b, 10, T0 + 1005 * MS);
}

static void test_burst_among_quiet(void **state)
{
	struct pfs_series s;
	struct pfs_run run;
	struct pfs_proc *p;
	struct lb b;

	(void)state;
	start(&b);
	periodic(&b, 5, 400, 50, 55);	/* 500/s all along, 40000/s for 50 ms */
	p = load(&run, &b);
	assert_int_equal(pfs_storms_compute(p, NULL, &s), 0);
	assert_int_equal(s.scan_interval_ns, 10 * MS);
	assert_int_equal(s.bucket_ns, 10 * MS);
	assert_int_equal(s.nstorms, 1);
	assert_int_equal(s.storms[0].top.stack, 2);
	assert_int_equal(s.storms[0].top.kind, PFS_KIND_MMAP);
	assert_int_equal(s.storms[0].top_faults, 2000);
	assert_true(s.storms[0].faults >= 2000 && s.storms[0].faults <= 2030);
	/* the pages found at 500 ms came in the 10 ms before it */
	assert_int_equal(s.storms[0].start_ns, 490 * MS);
	assert_int_equal(s.storms[0].end_ns, 540 * MS);
	assert_true(s.storms[0].rate > 35000 && s.storms[0].rate < 45000);
	assert_false(s.storms[0].one_scan);
	pfs_storms_free(&s);
	pfs_model_free(&run);
	lb_release(&b);
}

static void test_one_scan_burst(void **state)
{
	struct pfs_series s;
	struct pfs_run run;
	struct pfs_proc *p;
	struct lb b;

	(void)state;
	/* single-threaded: the allocation at 30 ms, its pages found by the scan at free, 2 s later */
	start(&b);
	lb_touch(&b, T0 + 5 * MS, 0, 1, PFS_KIND_MALLOC, 3, 0);
	lb_scan(&b, T0 + 5 * MS, 3, PFS_SCAN_PERIODIC);
	lb_alloc_at(&b, 1, T0 + 30 * MS, 2, PFS_KIND_MALLOC, 0x10000000, 64 << 20);
	lb_touch(&b, T0 + 2030 * MS, 0, 1, PFS_KIND_MALLOC, 2, 0);
	lb_touch(&b, T0 + 2030 * MS, 1, 2, PFS_KIND_MALLOC, 16383, 0);
	lb_scan(&b, T0 + 2030 * MS, 16385, PFS_SCAN_FREE);
	lb_proc_end_at(&b, 10, T0 + 2040 * MS);
	p = load(&run, &b);
	assert_int_equal(pfs_storms_compute(p, NULL, &s), 0);
	assert_int_equal(s.scan_interval_ns, 0);
	assert_int_equal(s.nstorms, 1);
	assert_true(s.storms[0].one_scan);
	assert_int_equal(s.storms[0].top.stack, 2);
	assert_int_equal(s.storms[0].start_ns, 30 * MS);
	assert_int_equal(s.storms[0].end_ns, 2030 * MS);
	assert_true(s.storms[0].faults >= 16383 && s.storms[0].faults <= 16385);
	pfs_storms_free(&s);
	pfs_model_free(&run);
	lb_release(&b);
}

static void test_flat_rates(void **state)
{
	struct pfs_series s;
	struct pfs_run run;
	struct pfs_proc *p;
	struct lb b;

	(void)state;
	start(&b);
	periodic(&b, 5, 0, 0, 0);	/* 500 pages/s: under the floor */
	p = load(&run, &b);
	assert_int_equal(pfs_storms_compute(p, NULL, &s), 0);
	assert_int_equal(s.nstorms, 0);
	assert_true(s.median_rate > 450 && s.median_rate < 550);
	pfs_storms_free(&s);
	pfs_model_free(&run);
	lb_release(&b);

	start(&b);
	periodic(&b, 100, 50, 20, 22);	/* 10000/s steady, 15000/s briefly: not 4x the median */
	p = load(&run, &b);
	assert_int_equal(pfs_storms_compute(p, NULL, &s), 0);
	assert_int_equal(s.nstorms, 0);
	assert_true(s.threshold > 39000);
	pfs_storms_free(&s);
	pfs_model_free(&run);
	lb_release(&b);
}

/* Times before the start, far in the future, zero pages: no crash, bounded buckets. */
static void test_wild_times(void **state)
{
	struct pfs_series s;
	struct pfs_run run;
	struct pfs_proc *p;
	struct lb b;

	(void)state;
	start(&b);
	lb_touch(&b, 1, 7, 3, PFS_KIND_MMAP, 5000, 0);
	lb_touch(&b, UINT64_MAX, 0, 3, PFS_KIND_MMAP, 5000, PFS_TOUCH_COW);
	lb_scan(&b, UINT64_MAX - 5, 0, PFS_SCAN_PERIODIC);
	lb_touch(&b, T0 + MS, 0, 4, PFS_KIND_MMAP, 0, 0);
	p = load(&run, &b);
	assert_int_equal(pfs_storms_compute(p, NULL, &s), 0);
	assert_true(s.nbuckets <= PFS_STORM_MAX_BUCKETS + 1);
	assert_int_equal(s.total_faults, 10000);
	assert_true(s.nstorms >= 1);
	pfs_storms_free(&s);
	pfs_model_free(&run);
	lb_release(&b);
}

/* A storm at the very end of the clock: its end, computed in double, rounds up to 2^64 (fuzzing found it). */
static void test_storm_at_the_end_of_time(void **state)
{
	struct pfs_series s;
	struct pfs_run run;
	struct pfs_proc *p;
	struct lb b;

	(void)state;
	/* a start at 0, so that relative times reach the top of the clock */
	lb_init(&b, 42, 0);
	lb_proc_start(&b, 42, 1, 0, 0, "/usr/bin/app", "app", 4);
	lb_touch(&b, 69797401889714011ull, 12, 5, PFS_KIND_MALLOC, 1, 0);
	lb_touch(&b, UINT64_MAX, UINT64_MAX, UINT32_MAX, 255, UINT32_MAX, 0);
	p = load(&run, &b);
	assert_int_equal(pfs_storms_compute(p, NULL, &s), 0);
	assert_true(s.nstorms >= 1);
	/* (uint64_t)2^64.0 is undefined; x86 gives 0, an end before the start */
	for (size_t i = 0; i < s.nstorms; i++)
		assert_true(s.storms[i].start_ns <= s.storms[i].end_ns);
	pfs_storms_free(&s);
	pfs_model_free(&run);
	lb_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_among_quiet),
		cmocka_unit_test(test_one_scan_burst),
		cmocka_unit_test(test_flat_rates),
		cmocka_unit_test(test_wild_times),
		cmocka_unit_test(test_storm_at_the_end_of_time),
	};

	return cmocka_run_group_tests_name("analyzer storms", tests, NULL, NULL);
}
