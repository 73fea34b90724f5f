/* Policies applied: the actions on real mappings, the old-kernel populate, symbol lookups, POLICY records. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "inlines.h"
#include "policy.h"
#include "policy_apply.h"
#include "shim_fixture.h"
#include "symtab.h"

#define PAGE 4096

static char *anon(size_t pages)
{
	char *m = pfs_sys_mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	/* Huge pages would make the counts depend on the machine's THP setting. */
	pfs_sys_madvise(m, pages * PAGE, MADV_NOHUGEPAGE);
	return m;
}

static size_t resident(const char *m, size_t pages)
{
	unsigned char vec[256];
	size_t n = 0;
	assert_true(pages <= sizeof(vec));
	assert_int_equal(mincore((void *)m, pages * PAGE, vec), 0);
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

static void test_populate_counts_the_pages_it_made_present(void **state)
{
	(void)state;
	pfs_proc.page_size = PAGE;
	char *m = anon(64);
	m[5 * PAGE] = 1; /* present before: not the policy's */
	int16_t res[PFS_POLICY_NACTIONS] = {0};
	uint64_t pre = 99;
	pfs_policy_act((uint64_t)(uintptr_t)m, 64 * PAGE, PFS_ACT_POPULATE | PFS_ACT_RANDOM, 1, res, &pre);
	assert_int_equal(pre, 63);
	assert_int_equal(resident(m, 64), 64);
	for (int k = 0; k < PFS_POLICY_NACTIONS; k++)
		assert_int_equal(res[k], 0);
	assert_int_equal(m[5 * PAGE], 1);
	/* Advice alone populates nothing and counts nothing. */
	char *a = anon(16);
	pfs_policy_act((uint64_t)(uintptr_t)a, 16 * PAGE, PFS_ACT_SEQUENTIAL | PFS_ACT_WILLNEED, 1, res, &pre);
	assert_int_equal(pre, 0);
	assert_int_equal(resident(a, 16), 0);
	pfs_sys_munmap(m, 64 * PAGE);
	pfs_sys_munmap(a, 16 * PAGE);
}

/* A kernel before 5.14: MADV_POPULATE_WRITE is EINVAL. */
static int calls_populate;
static int old_kernel_madvise(void *addr, size_t len, int advice)
{
	if (advice == MADV_POPULATE_WRITE || advice == MADV_POPULATE_READ) {
		calls_populate++;
		errno = EINVAL;
		return -1;
	}
	return pfs_sys_madvise(addr, len, advice);
}

static void test_populate_touches_each_page_where_the_kernel_lacks_it(void **state)
{
	(void)state;
	pfs_proc.page_size = PAGE;
	int (*real)(void *, size_t, int) = pfs_policy_madvise;
	pfs_policy_madvise = old_kernel_madvise;
	char *m = anon(32);
	m[7 * PAGE + 9] = 42;
	int16_t res[PFS_POLICY_NACTIONS] = {0};
	uint64_t pre = 0;
	pfs_policy_act((uint64_t)(uintptr_t)m, 32 * PAGE, PFS_ACT_POPULATE, 1, res, &pre);
	assert_int_equal(res[0], 0);
	assert_int_equal(pre, 31);
	assert_int_equal(resident(m, 32), 32);
	/* The touch leaves every byte as it was. */
	assert_int_equal(m[7 * PAGE + 9], 42);
	for (int i = 0; i < 32; i++)
		assert_int_equal(m[i * PAGE], 0);
	/* Memory that may not be written (a file, a read-only mapping): the error stays, nothing is touched. */
	char *r = anon(8);
	pfs_policy_act((uint64_t)(uintptr_t)r, 8 * PAGE, PFS_ACT_POPULATE | PFS_ACT_POPULATE_READ, 0, res, &pre);
	assert_int_equal(res[0], -EINVAL);
	assert_int_equal(res[1], -EINVAL);
	assert_int_equal(pre, 0);
	assert_int_equal(resident(r, 8), 0);
	assert_true(calls_populate >= 3);
	pfs_policy_madvise = real;
	pfs_sys_munmap(m, 32 * PAGE);
	pfs_sys_munmap(r, 8 * PAGE);
}

static __attribute__((noinline)) int local_function_for_lookup(int x)
{
	return x * 3 + 1;
}

static void test_symtab_names_static_functions_and_objects(void **state)
{
	(void)state;
	pfs_symtab_sync(1);
	const char *names[4];
	uint64_t a = (uint64_t)(uintptr_t)&local_function_for_lookup + 1;
	unsigned n = pfs_symtab_names(a, names, 4);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "local_function_for_lookup");
	assert_int_equal(local_function_for_lookup(1), 4);
	const char *obj = pfs_symtab_object(a);
	assert_non_null(obj);
	assert_non_null(strstr(obj, "test_shim_policy_apply"));
	/* libc's exported functions come from .dynsym; aliases share an address. */
	n = pfs_symtab_names((uint64_t)(uintptr_t)&getpid, names, 4);
	assert_true(n >= 1);
	int found = 0;
	for (unsigned i = 0; i < n; i++)
		found |= !strcmp(names[i], "getpid") || !strcmp(names[i], "__getpid");
	assert_true(found);
	assert_non_null(strstr(pfs_symtab_object((uint64_t)(uintptr_t)&getpid), "libc.so"));
	/* Nothing is mapped at page 1. */
	assert_int_equal(pfs_symtab_names(4096, names, 4), 0);
	assert_null(pfs_symtab_object(4096));
}

/* An object loaded later is read at the next sync; an unload moves the epoch (cached answers go stale). */
static void test_symtab_follows_dlopen_and_dlclose(void **state)
{
	(void)state;
	pfs_symtab_sync(1);
	uint32_t e0 = pfs_symtab_epoch();
	void *h = dlopen("libexpat.so.1", RTLD_NOW | RTLD_LOCAL); /* python3 needs it; not linked here */
	if (!h) {
		print_message("cannot dlopen libexpat.so.1: %s\n", dlerror());
		skip();
	}
	uint64_t a = (uint64_t)(uintptr_t)dlsym(h, "XML_ParserCreate");
	assert_true(a != 0);
	const char *names[4];
	assert_int_equal(pfs_symtab_names(a, names, 4), 0); /* not synced yet */
	pfs_symtab_sync(1);
	assert_int_equal(pfs_symtab_names(a, names, 4), 1);
	assert_string_equal(names[0], "XML_ParserCreate");
	assert_non_null(strstr(pfs_symtab_object(a), "libexpat.so"));
	assert_int_equal(pfs_symtab_epoch(), e0);
	dlclose(h);
	pfs_symtab_sync(1);
	assert_int_equal(pfs_symtab_epoch(), e0 + 1);
	assert_null(pfs_symtab_object(a));
}

struct found_policy {
	int n;
	struct pfs_rec_policy rec;
	char rule[128];
};

static void on_rec(const struct pfs_rec_hdr *h, void *arg)
{
	struct found_policy *f = arg;
	if (h->type != PFS_REC_POLICY)
		return;
	f->n++;
	memcpy(&f->rec, h, sizeof(f->rec));
	memcpy(f->rule, (const char *)h + sizeof(f->rec), f->rec.rule_len < 127 ? f->rec.rule_len : 127);
}

static void test_apply_writes_a_policy_record(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	strcpy(pfs_proc.cfg.policy, "mlock if size<64K ;  populate ,random if size>=64K, kind=mmap  ; hugepage");
	pfs_policy_init();
	assert_true(pfs_policy_on);
	struct pfs_thread *t = pfs_thread_get();
	char *m = anon(32);
	pfs_policy_apply(t, PFS_KIND_MMAP, 5, (uint64_t)(uintptr_t)m, 32 * PAGE - 100, PROT_READ | PROT_WRITE, 77);
	assert_int_equal(resident(m, 32), 32); /* a mapping's last page is its own */
	struct walked w = fixture_map(pfs_log_proc.path);
	struct found_policy f = {0};
	fixture_walk(&w, on_rec, &f);
	munmap(w.data, w.len);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.rec.alloc_seq, 77);
	assert_int_equal(f.rec.stack, 5);
	assert_int_equal(f.rec.kind, PFS_KIND_MMAP);
	assert_int_equal(f.rec.rule, 1);
	assert_int_equal(f.rec.actions, PFS_ACT_POPULATE | PFS_ACT_RANDOM);
	assert_int_equal(f.rec.prefaulted_pages, 32);
	assert_int_equal(f.rec.tid, t->tid);
	assert_true(f.rec.duration_ns > 0);
	for (int k = 0; k < PFS_POLICY_NACTIONS; k++)
		assert_int_equal(f.rec.result[k], 0);
	assert_string_equal(f.rule, "populate ,random if size>=64K, kind=mmap");
	pfs_sys_munmap(m, 32 * PAGE);
	pfs_policy_on = 0;
	fixture_close();
}

/*
 * C++ names demangled as the analyzer shows them, on the shim's own stack:
 * a thread with a 64 KiB stack demangles a name that needs more than that.
 */
struct dm_case {
	char *sym;
	char *out;
	int ok;
};

static void *demangle_thread(void *arg)
{
	struct dm_case *c = arg;
	c->ok = pfs_symtab_demangle(c->sym, c->out, 65536);
	return NULL;
}

static void test_symtab_demangles_on_its_own_stack(void **state)
{
	(void)state;
	char buf[256];
	assert_true(pfs_symtab_demangle("_ZN3app6Loader4loadEm", buf, sizeof(buf)));
	assert_string_equal(buf, "app::Loader::load");
	assert_false(pfs_symtab_demangle("load_records", buf, sizeof(buf)));
	/* func<int, int, ...> with 1000 ints: about 420 KiB of the demangler's stack */
	struct dm_case c = {.sym = malloc(1100), .out = malloc(65536)};
	assert_non_null(c.sym);
	assert_non_null(c.out);
	strcpy(c.sym, "_Z4funcIJ");
	memset(c.sym + 9, 'i', 1000);
	strcpy(c.sym + 1009, "EEvv");
	pthread_attr_t attr;
	pthread_t th;
	assert_int_equal(pthread_attr_init(&attr), 0);
	assert_int_equal(pthread_attr_setstacksize(&attr, 64 << 10), 0);
	assert_int_equal(pthread_create(&th, &attr, demangle_thread, &c), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(c.ok);
	assert_int_equal(strncmp(c.out, "func<int, int, ", 15), 0);
	assert_int_equal(strlen(c.out), strlen("func<>") + 1000 * strlen("int, ") - 2);
	free(c.sym);
	free(c.out);
}

/* An inlined function has no symbol: its ranges come from DWARF, read at start. */
static volatile int inlined_piece_runs;

static inline __attribute__((always_inline)) uintptr_t pfs_test_inlined_piece(void)
{
	uintptr_t r = (uintptr_t)__builtin_return_address(0);
	inlined_piece_runs++;
	__asm__ volatile("" : "+r"(r));
	return r;
}

static __attribute__((noinline)) uintptr_t pfs_test_around_inlined_piece(void)
{
	uintptr_t r = pfs_test_inlined_piece();
	__asm__ volatile("" : "+r"(r));
	return r;
}

static int want_piece(const char *name, void *arg)
{
	(void)arg;
	return !strcmp(name, "pfs_test_inlined_piece");
}

static void test_inlines_of_this_binary(void **state)
{
	(void)state;
	assert_true(pfs_inlines_load(want_piece, NULL) >= 1);
	/* every address of the function's instances: find one inside this binary's text */
	const char *names[8];
	int found = 0;
	uint64_t f = (uint64_t)(uintptr_t)&pfs_test_around_inlined_piece;
	for (uint64_t a = f; a < f + 256 && !found; a++) {
		unsigned n = pfs_inlines_names(a, names, 8);
		for (unsigned i = 0; i < n; i++)
			found |= !strcmp(names[i], "pfs_test_inlined_piece");
	}
	assert_true(found);
	assert_int_equal(pfs_inlines_names(4096, names, 8), 0);
	(void)pfs_test_around_inlined_piece();
}

/* DWARF where inlines.c reads it: this binary (built -g), not a copy without it or a build-id to find one by. */
static void test_has_dwarf_decides_the_reading(void **state)
{
	char exe[4096], copy[] = "/tmp/pfshim-test-nodwarf.XXXXXX", cmd[8300];
	(void)state;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = 0;
	assert_true(pfs_symtab_has_dwarf(exe));
	int fd = mkstemp(copy);
	assert_true(fd >= 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "objcopy --strip-debug --remove-section=.note.gnu.build-id '%s' '%s'", exe, copy);
	assert_int_equal(system(cmd), 0);
	assert_false(pfs_symtab_has_dwarf(copy));
	unlink(copy);
	assert_false(pfs_symtab_has_dwarf("/proc/self/cmdline")); /* not ELF */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_populate_counts_the_pages_it_made_present),
		cmocka_unit_test(test_populate_touches_each_page_where_the_kernel_lacks_it),
		cmocka_unit_test(test_symtab_names_static_functions_and_objects),
		cmocka_unit_test(test_symtab_follows_dlopen_and_dlclose),
		cmocka_unit_test(test_apply_writes_a_policy_record),
		cmocka_unit_test(test_symtab_demangles_on_its_own_stack),
		cmocka_unit_test(test_inlines_of_this_binary),
		cmocka_unit_test(test_has_dwarf_decides_the_reading),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
