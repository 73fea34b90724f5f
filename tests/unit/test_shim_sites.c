/* Stacks deduplicated into ids, the site cache's counters, the module map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dlfcn.h>

#include <cmocka.h>

#include "shim_fixture.h"

struct tally {
	int stacks, modules, unloads;
	int saw_libc_build_id;
	char exe_path[PATH_MAX];
	int saw_exe;
};

static void tally_rec(const struct pfs_rec_hdr *h, void *arg)
{
	struct tally *t = arg;
	if (h->type == PFS_REC_STACK)
		t->stacks++;
	if (h->type == PFS_REC_MODULE_UNLOAD)
		t->unloads++;
	if (h->type == PFS_REC_MODULE) {
		const struct pfs_rec_module *m = (const void *)h;
		const char *path = (const char *)(m + 1);
		t->modules++;
		if (memmem(path, m->path_len, "libc.so", 7) && m->build_id_len == 20)
			t->saw_libc_build_id = 1;
		if (m->path_len == strlen(t->exe_path) && !memcmp(path, t->exe_path, m->path_len))
			t->saw_exe = 1;
	}
}

static struct tally tally_log(void)
{
	struct tally t;
	memset(&t, 0, sizeof(t));
	ssize_t n = readlink("/proc/self/exe", t.exe_path, sizeof(t.exe_path) - 1);
	t.exe_path[n > 0 ? n : 0] = 0;
	struct walked w = fixture_map(pfs_log_proc.path);
	fixture_walk(&w, tally_rec, &t);
	munmap(w.data, w.len);
	return t;
}

static void test_stacks_dedup(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct pfs_thread *t = pfs_thread_get();
	uint64_t a[] = {0x1000, 0x2000, 0x3000}, b[] = {0x1000, 0x2000, 0x3001}, c[] = {0x1000, 0x2000};
	uint32_t ia = pfs_stacks_intern(t, a, 3, 0);
	uint32_t ib = pfs_stacks_intern(t, b, 3, 0);
	uint32_t ic = pfs_stacks_intern(t, c, 2, 0);
	assert_true(ia != 0 && ib != 0 && ic != 0);
	assert_int_not_equal(ia, ib);
	assert_int_not_equal(ia, ic); /* a prefix is another stack */
	assert_int_equal(pfs_stacks_intern(t, a, 3, 0), ia);
	assert_int_equal(pfs_stacks_intern(t, b, 3, 0), ib);
	struct tally tl = tally_log();
	assert_int_equal(tl.stacks, 3); /* one STACK record per distinct stack */
	fixture_close();
}

static void test_site_counts_exact(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct pfs_thread *t = pfs_thread_get();
	uint64_t before_c, before_b;
	pfs_counters_total(&before_c, &before_b);
	/* 10000 hits of one key and 100 of another: more than PFS_VERIFY_EVERY, so the check runs too. */
	for (int i = 0; i < 10000; i++)
		pfs_site_count(t, PFS_KIND_MALLOC, 0x401000, 0x7ffd0000, 16);
	for (int i = 0; i < 100; i++)
		pfs_site_count(t, PFS_KIND_CALLOC, 0x402000, 0x7ffd0000, 100);
	uint64_t c, b;
	pfs_counters_total(&c, &b);
	assert_int_equal(c - before_c, 10100);
	assert_int_equal(b - before_b, 10000 * 16 + 100 * 100);
	fixture_close();
}

static void test_site_lookup_is_stable(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct pfs_thread *t = pfs_thread_get();
	uint32_t s1 = pfs_site_lookup(t, PFS_KIND_MMAP, 0x500000, 0x7ffd1000);
	assert_true(s1 != 0);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(pfs_site_lookup(t, PFS_KIND_MMAP, 0x500000, 0x7ffd1000), s1);
	fixture_close();
}

static void test_modules_logged_with_build_ids(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	/* The module list is per process: a new log gets it whole, as a forked child's does. */
	pfs_modules_sync(0);
	pfs_modules_rewrite();
	struct tally tl = tally_log();
	assert_true(tl.modules >= 3);
	assert_true(tl.saw_libc_build_id);
	assert_true(tl.saw_exe);
	fixture_close();
}

static void test_modules_follow_dlopen_and_dlclose(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	pfs_modules_sync(1);
	int before = tally_log().modules;
	pfs_modules_sync(0); /* nothing changed: nothing written */
	assert_int_equal(tally_log().modules, before);
	void *h = dlopen("libanl.so.1", RTLD_NOW);
	assert_non_null(h);
	pfs_modules_sync(0);
	assert_int_equal(tally_log().modules, before + 1);
	dlclose(h);
	pfs_modules_sync(0);
	assert_int_equal(tally_log().unloads, 1);
	fixture_close();
}

static void test_fork_pending_charges_unknown_stack(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct pfs_thread *t = pfs_thread_get();
	uint32_t unknown = pfs_stacks_unknown(t);
	assert_true(unknown != 0);
	pfs_unwind_gate_close(); /* no unwinder is active: returns at once */
	assert_int_equal(pfs_site_lookup(t, PFS_KIND_MALLOC, 0x600000, 0x7ffd2000), unknown);
	pfs_site_count(t, PFS_KIND_MALLOC, 0x600000, 0x7ffd2000, 8);
	pfs_unwind_gate_open();
	/* The unknown result was not cached: the same key now gets a real stack. */
	uint32_t real = pfs_site_lookup(t, PFS_KIND_MALLOC, 0x600000, 0x7ffd2000);
	assert_true(real != 0 && real != unknown);
	uint64_t c, b;
	pfs_counters_total(&c, &b);
	pfs_site_count(t, PFS_KIND_MALLOC, 0x600000, 0x7ffd2000, 8);
	uint64_t c2, b2;
	pfs_counters_total(&c2, &b2);
	assert_int_equal(c2 - c, 1);
	fixture_close();
}

static void test_addr_in_self(void **state)
{
	(void)state;
	/* The core is linked into this test, so "self" is this executable here. */
	assert_true(pfs_addr_in_self((uintptr_t)&test_addr_in_self));
	assert_false(pfs_addr_in_self((uintptr_t)&dlopen));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stacks_dedup),
		cmocka_unit_test(test_site_counts_exact),
		cmocka_unit_test(test_site_lookup_is_stable),
		cmocka_unit_test(test_modules_logged_with_build_ids),
		cmocka_unit_test(test_modules_follow_dlopen_and_dlclose),
		cmocka_unit_test(test_fork_pending_charges_unknown_stack),
		cmocka_unit_test(test_addr_in_self),
	};
	return cmocka_run_group_tests_name("shim sites", tests, NULL, NULL);
}
