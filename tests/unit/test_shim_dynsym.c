/*
 * dynsym.c: whether a loaded object exports a name, from the objects' GNU
 * hash tables.  It may say "maybe" where dlsym would fail (an object
 * loaded RTLD_LOCAL), never "no" where dlsym finds the name.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>

#include <cmocka.h>

#include "dynsym.h"

static void test_agrees_with_dlsym(void **state)
{
	(void)state;
	static const char *const names[] = {
		"malloc", "printf", "dl_iterate_phdr", "memcpy", /* libc, memcpy with two versions */
		"_cmocka_run_group_tests", "unw_backtrace", /* this test's other libraries */
		"Py_Version", "Py_GetVersion", "pfs_no_such_name", "mallo", "malloc_", "", /* absent */
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int want = dlsym(RTLD_DEFAULT, names[i]) != NULL;
		print_message("%s: dlsym %d\n", names[i], want);
		assert_int_equal(pfs_dynsym_maybe(names[i]), want);
	}
}

/* The vDSO is read too (its dynamic entries stay relative to its base): dlsym does not look there. */
static void test_every_object_read(void **state)
{
	(void)state;
	if (!getauxval(AT_SYSINFO_EHDR)) {
		print_message("this process has no vDSO\n");
		skip();
	}
	assert_int_equal(pfs_dynsym_maybe("__vdso_clock_gettime"), 1);
	assert_int_equal(pfs_dynsym_maybe("__vdso_no_such_call"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agrees_with_dlsym),
		cmocka_unit_test(test_every_object_read),
	};
	return cmocka_run_group_tests_name("shim dynsym", tests, NULL, NULL);
}
