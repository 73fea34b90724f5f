/* The PFSHIM_* configuration table: values, defaults, and one warning per bad value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "pfshim/log_format.h"

struct warns {
	int n;
	char last[256];
};

static void collect(void *ctx, const char *text)
{
	struct warns *w = ctx;
	w->n++;
	snprintf(w->last, sizeof(w->last), "%s", text);
}

static void test_defaults(void **state)
{
	(void)state;
	struct pfs_config c;
	char *env[] = {"PATH=/bin", "HOME=/root", NULL};
	struct warns w = {0};
	assert_int_equal(pfs_config_parse(&c, env, collect, &w), 0);
	assert_int_equal(c.mode, -1);
	assert_string_equal(c.out, "");
	assert_int_equal(c.quiet, 0);
	assert_int_equal(c.scan_ms, PFS_SCAN_MS_DEFAULT);
	assert_int_equal(c.run_pid, 0);
}

static void test_good_values(void **state)
{
	(void)state;
	struct pfs_config c;
	char *env[] = {"PFSHIM_MODE=exact", "PFSHIM_OUT=/tmp/x", "PFSHIM_QUIET=yes", "PFSHIM_SCAN_MS=25",
		       "PFSHIM_TOUCH_SITE=on", "PFSHIM_POLICY=populate if size>=1M", "PFSHIM_RUN=4242",
		       "PFSHIM_PAGEMAP=read", NULL};
	struct warns w = {0};
	assert_int_equal(pfs_config_parse(&c, env, collect, &w), 0);
	assert_int_equal(c.mode, PFS_MODE_EXACT);
	assert_string_equal(c.out, "/tmp/x");
	assert_int_equal(c.quiet, 1);
	assert_int_equal(c.scan_ms, 25);
	assert_int_equal(c.touch_site, 1);
	assert_string_equal(c.policy, "populate if size>=1M");
	assert_int_equal(c.run_pid, 4242);
	assert_int_equal(c.pagemap, PFS_PAGEMAP_READ);
}

static void test_bad_values_warn_and_keep_defaults(void **state)
{
	(void)state;
	struct pfs_config c;
	char *env[] = {"PFSHIM_MODE=turbo", "PFSHIM_QUIET=maybe", "PFSHIM_PAGEMAP=guess", "PFSHIM_SCAN_MS=0", NULL};
	struct warns w = {0};
	assert_int_equal(pfs_config_parse(&c, env, collect, &w), 4);
	assert_int_equal(w.n, 4);
	assert_int_equal(c.pagemap, PFS_PAGEMAP_AUTO);
	assert_int_equal(c.mode, -1);
	assert_int_equal(c.quiet, 0);
	assert_int_equal(c.scan_ms, PFS_SCAN_MS_DEFAULT);
	assert_non_null(strstr(w.last, "PFSHIM_SCAN_MS"));
}

static void test_unknown_variable_named(void **state)
{
	(void)state;
	struct pfs_config c;
	char *env[] = {"PFSHIM_MDOE=fast", NULL};
	struct warns w = {0};
	assert_int_equal(pfs_config_parse(&c, env, collect, &w), 1);
	assert_non_null(strstr(w.last, "PFSHIM_MDOE"));
}

/* The analyzer's variables are known, not the shim's: a user who exports them traces in peace. */
static void test_analyzer_variables_not_unknown(void **state)
{
	(void)state;
	struct pfs_config c;
	char *env[] = {"PFSHIM_LIB=/x/libpfshim.so", "PFSHIM_FAULT_COST=first=1us", "PFSHIM_RUNTIME_FRAMES=f", NULL};
	struct warns w = {0};
	assert_int_equal(pfs_config_parse(&c, env, collect, &w), 0);
	assert_int_equal(w.n, 0);
}

static void test_too_long_out_ignored(void **state)
{
	(void)state;
	static char big[PATH_MAX + 32];
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "PFSHIM_OUT=", 11);
	char *env[] = {big, NULL};
	struct pfs_config c;
	struct warns w = {0};
	assert_int_equal(pfs_config_parse(&c, env, collect, &w), 1);
	assert_string_equal(c.out, "");
}

static void test_parse_bool(void **state)
{
	(void)state;
	int b = -1;
	assert_int_equal(pfs_parse_bool("TRUE", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(pfs_parse_bool("off", &b), 0);
	assert_int_equal(b, 0);
	assert_int_equal(pfs_parse_bool("2", &b), -1);
}

static void test_parse_size(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(pfs_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(pfs_parse_size("1M", &v), 0);
	assert_int_equal(v, 1u << 20);
	assert_int_equal(pfs_parse_size("3g", &v), 0);
	assert_int_equal(v, 3ull << 30);
	assert_int_equal(pfs_parse_size("", &v), -1);
	assert_int_equal(pfs_parse_size("12Q", &v), -1);
	assert_int_equal(pfs_parse_size("99999999999999999999", &v), -1);
	assert_int_equal(pfs_parse_size("17179869184G", &v), -1); /* overflows 64 bits */
}

static void test_parse_uint_bounds(void **state)
{
	(void)state;
	unsigned long v;
	assert_int_equal(pfs_parse_uint("600000", 600000, &v), 0);
	assert_int_equal(pfs_parse_uint("600001", 600000, &v), -1);
	assert_int_equal(pfs_parse_uint("-1", 600000, &v), -1);
	assert_int_equal(pfs_parse_uint("1x", 600000, &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_bad_values_warn_and_keep_defaults),
		cmocka_unit_test(test_unknown_variable_named),
		cmocka_unit_test(test_analyzer_variables_not_unknown),
		cmocka_unit_test(test_too_long_out_ignored),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_uint_bounds),
	};
	return cmocka_run_group_tests_name("shim config", tests, NULL, NULL);
}
