/*
 * Perf maps (analyzer/jitmap.c): the lines perf reads, with or without 0x
 * (node writes bare hexadecimal, HotSpot 0x...); lines that are not such
 * skipped; code written later at the same place named by its newer line;
 * the map kept beside a log read before /tmp's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../analyzer/jitmap.h"

static char dir[] = "/tmp/pfshim-jitmap-XXXXXX";

static void write_file(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_kept_map_lines(void **state)
{
	(void)state;
	char log[256];
	snprintf(log, sizeof(log), "%s/pfshim.4242.pfslog", dir);
	/* a pid /tmp has no map for: only the kept one can name anything */
	struct pfs_proc p = {.log_path = log, .pid = 4242424242u, .start_ns = 1};
	write_file("pfshim.4242.perf.map",
		   "0x7f0000001000 0x100 java.lang.Object::<init>()\n"
		   "2000 10 JS:~old /srv/a.js:1:1\n"
		   "not a line of a perf map\n"
		   "3000 0 empty\n"
		   "2000 10 JS:*new /srv/a.js:1:1\n"
		   "4000 20 Builtin:ArrayPrototypePush\n");
	assert_string_equal(pfs_jitmap_name(&p, 0x7f0000001050), "java.lang.Object::<init>()");
	assert_string_equal(pfs_jitmap_name(&p, 0x2000), "JS:*new /srv/a.js:1:1");
	assert_string_equal(pfs_jitmap_name(&p, 0x200f), "JS:*new /srv/a.js:1:1");
	assert_null(pfs_jitmap_name(&p, 0x2010));
	assert_null(pfs_jitmap_name(&p, 0x3000));
	assert_string_equal(pfs_jitmap_name(&p, 0x401f), "Builtin:ArrayPrototypePush");
	assert_null(pfs_jitmap_name(&p, 0x1fff));
	/* read once: a map changed later is not read again for the same process */
	write_file("pfshim.4242.perf.map", "2000 10 JS:other\n");
	assert_string_equal(pfs_jitmap_name(&p, 0x2000), "JS:*new /srv/a.js:1:1");
	pfs_jitmap_reset();
	assert_string_equal(pfs_jitmap_name(&p, 0x2000), "JS:other");
	pfs_jitmap_reset();
}

static void test_no_map(void **state)
{
	(void)state;
	char log[256];
	snprintf(log, sizeof(log), "%s/pfshim.77.pfslog", dir);
	struct pfs_proc p = {.log_path = log, .pid = 4242424243u, .start_ns = 1};
	assert_null(pfs_jitmap_name(&p, 0x2000));
	pfs_jitmap_reset();
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept_map_lines),
		cmocka_unit_test(test_no_map),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		rc = rc ? rc : 1;
	return rc;
}
