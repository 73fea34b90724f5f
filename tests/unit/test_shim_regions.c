/* Fast mode's regions: the bitmap helpers, and first touches counted on a real mapping. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena.h"
#include "probe.h"
#include "regions.h"
#include "tracker.h"
#include "shim_fixture.h"

#define PAGE 4096

static void test_bits_set_count_and_clear(void **state)
{
	(void)state;
	struct pfs_bits b;
	assert_int_equal(pfs_bits_init(&b, 256), 0);
	assert_int_equal(pfs_bits_set_count(&b, 3, 70), 67);
	assert_int_equal(pfs_bits_set_count(&b, 0, 10), 3); /* 3..9 were set already */
	assert_int_equal(pfs_bits_count(&b), 70);
	assert_int_equal(pfs_bits_clear(&b, 60, 130), 10); /* 60..69 were set */
	assert_true(pfs_bits_get(&b, 59));
	assert_false(pfs_bits_get(&b, 60));
	assert_false(pfs_bits_any(&b, 60, 256));
	assert_int_equal(pfs_bits_set_count(&b, 0, 256), 256 - 60);
	assert_int_equal(pfs_bits_set_count(&b, 5, 5), 0);
	pfs_bits_free(&b);
}

/*
 * A bitmap of a mapping of terabytes (ThreadSanitizer's shadow, found whole):
 * only the leaves holding set bits exist, and clearing all of it, counting
 * and copying cost what is set, not what the mapping spans.
 */
static void test_bits_sparse(void **state)
{
	(void)state;
	uint64_t pages = 1ull << 32; /* 16 TiB of 4 KiB pages: 512 MiB as one flat bitmap */
	struct pfs_bits b, c;
	assert_int_equal(pfs_bits_init(&b, pages), 0);
	uint64_t far = pages - 5 * PFS_BITS_LEAF / 2;
	assert_int_equal(pfs_bits_set_count(&b, 7, 9), 2);
	assert_int_equal(pfs_bits_set_count(&b, far - 3, far + 3), 6);
	assert_int_equal(pfs_bits_set_count(&b, pages - 1, pages + 10), 1); /* clipped at the end */
	assert_int_equal(pfs_bits_count(&b), 9);
	assert_true(pfs_bits_any(&b, 9, pages));
	assert_false(pfs_bits_any(&b, 9, far - 3));
	assert_true(pfs_bits_get(&b, far + 2));
	assert_false(pfs_bits_get(&b, far + 3));
	/* a range across leaves, set and counted once */
	uint64_t edge = 3 * PFS_BITS_LEAF;
	assert_int_equal(pfs_bits_set_count(&b, edge - 10, edge + 10), 20);
	assert_int_equal(pfs_bits_set_count(&b, edge - 20, edge + 20), 20);
	/* copied, shifted, into another sparse bitmap */
	assert_int_equal(pfs_bits_init(&c, pages), 0);
	pfs_bits_copy(&c, 100, &b, 0, pages - 100);
	assert_int_equal(pfs_bits_count(&c), 2 + 6 + 40);
	assert_true(pfs_bits_get(&c, 107));
	assert_true(pfs_bits_get(&c, far + 100 - 3));
	assert_false(pfs_bits_get(&c, far + 100 + 3));
	pfs_bits_free(&c);
	/* cleared across everything: what stays is before the cleared range */
	assert_int_equal(pfs_bits_clear(&b, 8, pages), 1 + 6 + 1 + 40);
	assert_int_equal(pfs_bits_count(&b), 1);
	assert_int_equal(pfs_bits_next(&b, 0, pages), 7);
	assert_int_equal(pfs_bits_next(&b, 8, pages), pages);
	assert_int_equal(pfs_bits_next_clear(&b, 7, pages), 8);
	assert_int_equal(pfs_bits_next_clear(&b, 0, pages), 0);
	assert_true(pfs_bits_get(&b, 7));
	/* grown from one leaf to many, keeping its bits */
	struct pfs_bits g;
	assert_int_equal(pfs_bits_init(&g, 100), 0);
	assert_int_equal(pfs_bits_set_count(&g, 90, 100), 10);
	assert_int_equal(pfs_bits_grow(&g, 5 * PFS_BITS_LEAF), 0);
	assert_int_equal(pfs_bits_set_count(&g, 80, 4 * PFS_BITS_LEAF), 4 * PFS_BITS_LEAF - 80 - 10);
	assert_int_equal(pfs_bits_count(&g), 4 * PFS_BITS_LEAF - 80);
	assert_int_equal(pfs_bits_next_clear(&g, 80, 5 * PFS_BITS_LEAF), 4 * PFS_BITS_LEAF);
	assert_int_equal(pfs_bits_next_clear(&g, 0, 5 * PFS_BITS_LEAF), 0);
	pfs_bits_free(&g);
	pfs_bits_free(&b);
}

/*
 * After a fork the bitmaps are shared with the other process until one of
 * them writes: setting what is set, clearing what is clear and copying what
 * is equal write nothing (each write would copy a page in both processes of
 * every fork).  Leaves made read-only prove it: a write faults, and the
 * handler counts it and lets it through.
 */
static uintptr_t ro_pages[2];
static volatile int ro_writes;

static void on_ro_write(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	uintptr_t a = (uintptr_t)si->si_addr & ~(uintptr_t)(PAGE - 1);
	for (int k = 0; k < 2; k++)
		if (a >= ro_pages[k] && a < ro_pages[k] + 2 * PAGE) {
			ro_writes++;
			mprotect((void *)ro_pages[k], 2 * PAGE, PROT_READ | PROT_WRITE);
			return;
		}
	signal(SIGSEGV, SIG_DFL); /* not ours: crash as it would */
}

static void test_bits_unchanged_not_written(void **state)
{
	(void)state;
	struct pfs_bits b, c;
	assert_int_equal(pfs_bits_init(&b, 1000), 0);
	assert_int_equal(pfs_bits_init(&c, 1000), 0);
	assert_int_equal(pfs_bits_set_count(&b, 10, 300), 290);
	assert_int_equal(pfs_bits_set_count(&b, 500, 501), 1);
	pfs_bits_copy(&c, 0, &b, 0, 1000);
	assert_int_equal(pfs_bits_count(&c), 291);
	assert_non_null(b.only);
	assert_non_null(c.only);
	ro_pages[0] = (uintptr_t)b.only & ~(uintptr_t)(PAGE - 1);
	ro_pages[1] = (uintptr_t)c.only & ~(uintptr_t)(PAGE - 1);
	struct sigaction sa = {.sa_sigaction = on_ro_write, .sa_flags = SA_SIGINFO}, old;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGSEGV, &sa, &old), 0);
	ro_writes = 0;
	for (int k = 0; k < 2; k++)
		assert_int_equal(mprotect((void *)ro_pages[k], 2 * PAGE, PROT_READ), 0);
	assert_int_equal(pfs_bits_set_count(&b, 20, 200), 0);
	assert_int_equal(pfs_bits_clear(&b, 300, 500), 0);
	pfs_bits_copy(&c, 0, &b, 0, 1000);
	pfs_bits_copy(&c, 10, &b, 10, 300);
	for (int k = 0; k < 2; k++)
		assert_int_equal(mprotect((void *)ro_pages[k], 2 * PAGE, PROT_READ | PROT_WRITE), 0);
	sigaction(SIGSEGV, &old, NULL);
	assert_int_equal(ro_writes, 0);
	/* and a copy that changes something still changes it */
	assert_int_equal(pfs_bits_clear(&b, 500, 501), 1);
	pfs_bits_copy(&c, 0, &b, 0, 1000);
	assert_int_equal(pfs_bits_count(&c), 290);
	assert_false(pfs_bits_get(&c, 500));
	pfs_bits_free(&c);
	pfs_bits_free(&b);
}

/* Pages of TOUCH records of site `stack` in the log so far (a pass also finds the test's other memory). */
static uint64_t touches_in_log(uint32_t stack)
{
	struct walked w = fixture_map(pfs_log_proc.path);
	uint64_t pages = 0;
	size_t off = sizeof(struct pfs_file_header);
	while (off + 8 <= w.len) {
		const struct pfs_rec_hdr *h = (const void *)(w.data + off);
		size_t block_end = (off / PFS_LOG_BLOCK_SIZE + 1) * PFS_LOG_BLOCK_SIZE;
		if (h->type == 0) {
			off = block_end;
			continue;
		}
		if (h->type == PFS_REC_TOUCH && ((const struct pfs_rec_touch *)h)->stack == stack)
			pages += ((const struct pfs_rec_touch *)h)->pages;
		off += h->size;
	}
	munmap(w.data, w.len);
	return pages;
}

/* Fast mode started on the fixture's log, as the shim's start does; the test is skipped without PAGEMAP_SCAN. */
static struct pfs_thread *fast_started(void)
{
	if (pfs_probe_pagemap_scan() != 1) {
		print_message("this kernel has no PAGEMAP_SCAN\n");
		skip();
	}
	assert_int_equal(fixture_open(), 0);
	const char *why = "";
	assert_int_equal(pfs_tracker_fast.init(&why), 0);
	assert_int_equal(pfs_tracker_fast.start(&why), 0);
	return pfs_thread_get();
}

static void test_first_touches_on_a_mapping(void **state)
{
	(void)state;
	const struct pfs_tracker *fast = &pfs_tracker_fast;
	struct pfs_thread *t = fast_started();
	fast->adopted(t, 0); /* nothing held at start handed over: each range added from now on takes its baseline */
	char *m = pfs_sys_mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	pfs_sys_madvise(m, 64 * PAGE, MADV_NOHUGEPAGE);
	m[0] = 1; /* present before the region starts: baseline, not a first touch */
	fast->add(t, (uint64_t)(uintptr_t)m, 64 * PAGE, 1, 7, PFS_KIND_MMAP, 1);
	for (int i = 10; i < 15; i++)
		m[i * PAGE] = 1;
	pfs_regions_scan_all(t, PFS_SCAN_PERIODIC);
	assert_int_equal(touches_in_log(7), 5);
	pfs_regions_scan_all(t, PFS_SCAN_PERIODIC);
	assert_int_equal(touches_in_log(7), 5); /* counted once */
	/* Dropped and touched again: first touches again. */
	pfs_sys_madvise(m + 10 * PAGE, 2 * PAGE, MADV_DONTNEED);
	pfs_regions_scan_all(t, PFS_SCAN_MADVISE);
	assert_int_equal(touches_in_log(7), 5);
	m[10 * PAGE] = 2;
	m[11 * PAGE] = 2;
	/* Partial unmap: the final scan counts the last touches; the rest stays tracked. */
	m[40 * PAGE] = 3;
	fast->unmap(t, (uint64_t)(uintptr_t)(m + 32 * PAGE), 32 * PAGE);
	pfs_sys_munmap(m + 32 * PAGE, 32 * PAGE);
	m[20 * PAGE] = 4;
	fast->free_at(t, (uint64_t)(uintptr_t)m);
	assert_int_equal(touches_in_log(7), 5 + 2 + 1 + 1);
	pfs_sys_munmap(m, 32 * PAGE);
	fixture_close();
}

/*
 * The start: ranges handed over before `adopted` (the process's memory at
 * start, or another tracker's) take their baselines then, all in one walk.
 * Handed over by another tracker (touched 0), the pages held then were
 * counted already; at an image's start (touched 1) the image took them
 * before the shim started, first touches too.
 */
static void adoption(int touched, int expected)
{
	const struct pfs_tracker *fast = &pfs_tracker_fast;
	struct pfs_thread *t = fast_started();
	char *m = pfs_sys_mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	pfs_sys_madvise(m, 16 * PAGE, MADV_NOHUGEPAGE);
	m[0] = 1;
	fast->add(t, (uint64_t)(uintptr_t)m, 16 * PAGE, 1, 9, PFS_KIND_PRESTART, 1);
	m[3 * PAGE] = 1; /* before adoption ends */
	fast->adopted(t, touched);
	m[5 * PAGE] = 1;
	m[6 * PAGE] = 1;
	pfs_regions_scan_all(t, PFS_SCAN_PERIODIC);
	assert_int_equal(touches_in_log(9), expected);
	pfs_regions_scan_all(t, PFS_SCAN_PERIODIC);
	assert_int_equal(touches_in_log(9), expected); /* once */
	fast->free_at(t, (uint64_t)(uintptr_t)m);
	pfs_sys_munmap(m, 16 * PAGE);
	fixture_close();
}

static void test_baselines_at_adoption(void **state)
{
	(void)state;
	adoption(0, 2);
}

static void test_pages_held_at_start_counted(void **state)
{
	(void)state;
	adoption(1, 4);
}


static long minor_faults(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return u.ru_minflt;
}

/*
 * What a fork shares of a region (r->cow) is rebuilt by both sides after
 * every fork, so it lives in per-fork memory: a forked child finds it empty
 * (no pages, registered with no descriptor) and makes it again where it
 * lies, never writing the region; the parent's is untouched by the child's
 * and, where the kernel wipes on fork (4.14), still writable after the
 * fork: rewriting it takes no page fault.
 */
static void test_cow_state_is_per_fork(void **state)
{
	(void)state;
	pfs_regions_lock();
	struct region *r = pfs_region_new(0x7e0000000000ull, 64, 1, 7, PFS_KIND_MMAP, 1);
	pfs_regions_unlock();
	assert_non_null(r);
	struct pfs_cow *c = pfs_region_cow(r);
	assert_non_null(c);
	assert_int_equal(pfs_bits_set_count(&c->bits, 3, 10), 7);
	c->left = 7;
	c->wp_gen = 5;
	void *probe = pfs_sys_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(probe != MAP_FAILED);
	int wiped = pfs_sys_madvise(probe, PAGE, MADV_WIPEONFORK) == 0;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pfs_arena_child_reset();
		int ok = r->cow == c && (!wiped || (c->left == 0 && c->wp_gen == 0 && !pfs_bits_get(&c->bits, 3)));
		struct pfs_cow *d = pfs_region_cow(r);
		ok = ok && d == c && d->bits.per_fork && d->bits.pages == r->cap && pfs_bits_count(&d->bits) == 0 &&
		     d->left == 0 && d->wp_gen == 0 && pfs_bits_set_count(&d->bits, 1, 2) == 1;
		_exit(ok ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/*
	 * Only the pool's page may be written below.  The stack's pages were
	 * write-protected by the fork too: getrusage's copy of its result, and
	 * the frames of a clear, fault once on them (wherever ASLR puts the
	 * page boundaries: 3 % of runs), counted by the next reading.  So both
	 * run once first (the clear on a bit that is clear: nothing written).
	 */
	assert_int_equal(pfs_bits_clear(&c->bits, 40, 41), 0);
	minor_faults();
	long before = minor_faults();
	c->left = 6;
	assert_int_equal(pfs_bits_clear(&c->bits, 3, 4), 1);
	if (wiped)
		assert_int_equal(minor_faults(), before);
	assert_int_equal(pfs_bits_count(&c->bits), 6);
	assert_int_equal(c->wp_gen, 5);
	pfs_regions_lock();
	pfs_region_free(r);
	pfs_regions_unlock();
	pfs_sys_munmap(probe, PAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bits_set_count_and_clear),
		cmocka_unit_test(test_bits_sparse),
		cmocka_unit_test(test_bits_unchanged_not_written),
		cmocka_unit_test(test_first_touches_on_a_mapping),
		cmocka_unit_test(test_baselines_at_adoption),
		cmocka_unit_test(test_pages_held_at_start_counted),
		cmocka_unit_test(test_cow_state_is_per_fork),
	};
	return cmocka_run_group_tests_name("shim regions (fast mode)", tests, NULL, NULL);
}
