/*
 * The page map walks (pagemap.c): every run of held pages handed over once,
 * in address order, however many runs the kernel returns in one call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "pagemap.h"
#include "probe.h"
#include "proc.h"

#define PAGE 4096
#define PAGES 4000 /* every other one touched: 2,000 runs, more than the kernel's own buffer of 512 */

struct seen {
	uint64_t lo, hi;	/* the mapping */
	uint64_t last_to;	/* the previous run's end: runs come in address order */
	uint64_t pages, runs, backwards;
};

static void on_run(uint64_t from, uint64_t to, uint64_t cats, void *arg)
{
	(void)cats;
	struct seen *s = arg;
	if (from < s->last_to)
		s->backwards++;
	s->last_to = to;
	if (to <= s->lo || from >= s->hi)
		return;
	s->pages += ((to < s->hi ? to : s->hi) - (from > s->lo ? from : s->lo)) / PAGE;
	s->runs++;
}

static struct page_region vec[4096];

static void check_walks(size_t n)
{
	if (pfs_probe_pagemap_scan() != 1) {
		print_message("this kernel has no PAGEMAP_SCAN\n");
		skip();
	}
	pfs_proc.page_size = PAGE;
	assert_int_equal(pfs_pagemap_init(0), 0);
	char *m = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	madvise(m, PAGES * PAGE, MADV_NOHUGEPAGE);
	for (int i = 0; i < PAGES; i += 2)
		m[(size_t)i * PAGE] = 1;
	uint64_t lo = (uint64_t)(uintptr_t)m, hi = lo + PAGES * PAGE;
	struct seen s = {.lo = lo, .hi = hi};
	assert_int_equal(pfs_pagemap_walk(-1, lo, hi, PAGE_IS_PRESENT, PAGE_IS_PRESENT, vec, n, on_run, &s), 0);
	assert_int_equal(s.backwards, 0);
	assert_int_equal(s.runs, PAGES / 2);
	assert_int_equal(s.pages, PAGES / 2);
	/* The whole address space: the mapping's runs once each, all in order. */
	s = (struct seen){.lo = lo, .hi = hi};
	assert_int_equal(pfs_pagemap_walk(pfs_pagemap_fd(), 0, PFS_USER_END, PAGE_IS_PRESENT, PAGE_IS_PRESENT, vec, n, on_run, &s), 0);
	assert_int_equal(s.backwards, 0);
	assert_int_equal(s.runs, PAGES / 2);
	assert_int_equal(s.pages, PAGES / 2);
	munmap(m, PAGES * PAGE);
}

/* One call returns them all (the kernel fills its own buffer four times on the way). */
static void test_runs_once_each_in_one_call(void **state)
{
	(void)state;
	check_walks(4096);
}

/* The caller's vector fills: the walk goes on where the kernel stopped. */
static void test_runs_once_each_in_many_calls(void **state)
{
	(void)state;
	check_walks(100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_once_each_in_one_call),
		cmocka_unit_test(test_runs_once_each_in_many_calls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
