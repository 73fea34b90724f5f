/*
 * The pfshim command line, driven in-process through pfs_cli_main(): the
 * whole JSON report of a hand-built run directory checked by python3's
 * parser against the contract's schema, the text report, the exit codes,
 * and `record`'s environment and exit statuses (with /dev/null as the shim,
 * which ld.so ignores after a warning).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../analyzer/cli.h"
#include "test_an_logbuild.h"

static const int app_line = __LINE__ + 1;
static __attribute__((noinline, used)) int pfs_an_cli_site(int x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}

#define CLI(...) lb_cli((char *[]){"pfshim", __VA_ARGS__, NULL})

struct rundir {
	char dir[64];
	char out[96];
};

/*
 * A run: parent 500 (this test binary as its module, so frames symbolize)
 * forks 501; both allocate at the same stack; 501 also at a stack in a
 * library that no longer exists; 501 was killed (no PROC_END).
 */
static void make_run(struct rundir *r, bool corrupt_child)
{
	static const char pcmd[] = "app\0--in\0data file\0", ccmd[] = "app\0--in\0data file\0";
	struct lb_self self;
	struct lb a, c;
	uint64_t f1[2], f2[1] = {0x7f1200001234};
	struct pfs_counter_slot slot = {.stack = 1, .kind = PFS_KIND_MALLOC, .count = 40,
					.bytes = 4000};
	char path[128];
	size_t off;

	assert_int_equal(lb_self_module(&self), 0);
	f1[0] = (uintptr_t)&pfs_an_cli_site + 1;
	f1[1] = 0x7f0000000100;	/* in no module */
	strcpy(r->dir, "/tmp/pfs-an-cli-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->out, sizeof(r->out), "%s.out", r->dir);

	lb_init(&a, 500, 1000);
	lb_proc_start(&a, 500, 1, 1000, 0, "/usr/bin/app", pcmd, sizeof(pcmd) - 1);
	lb_module(&a, 1, 1, self.base, self.start, self.end, self.path, self.build_id,
		  (uint8_t)self.build_id_len);
	lb_stack(&a, 2, 1, f1, 2);
	lb_counters(&a, &slot, 1);
	lb_alloc(&a, 3, 1, PFS_KIND_MMAP, 0x10000000, 1 << 20, 1 << 20);
	lb_fork(&a, 4, 501);
	lb_proc_end(&a, 5, 0, PFS_END_EXIT);

	lb_init(&c, 501, 2000);
	lb_proc_start(&c, 501, 500, 2000, 0, "/usr/bin/app", ccmd, sizeof(ccmd) - 1);
	lb_module(&c, 1, 1, self.base, self.start, self.end, self.path, self.build_id,
		  (uint8_t)self.build_id_len);
	lb_module(&c, 2, 2, 0x7f1200000000, 0x7f1200000000, 0x7f1200100000, "/nonexistent/libgone.so",
		  NULL, 0);
	lb_stack(&c, 3, 1, f1, 2);
	lb_stack(&c, 4, 2, f2, 1);
	off = lb_alloc(&c, 5, 2, PFS_KIND_CALLOC, 0x20000000, 300, 304);
	lb_next_block(&c);
	lb_alloc(&c, 6, 1, PFS_KIND_MALLOC, 0x30000000, 5000, 5008);
	if (corrupt_child)
		c.buf[off + 4] = 7;	/* a size that is no multiple of 8 */

	snprintf(path, sizeof(path), "%s/one.pfslog", r->dir);
	assert_int_equal(lb_write(&a, path, a.len), 0);
	snprintf(path, sizeof(path), "%s/two.pfslog", r->dir);
	assert_int_equal(lb_write(&c, path, c.len), 0);
	snprintf(path, sizeof(path), "%s/notes.txt", r->dir);	/* not a log: ignored */
	assert_int_equal(lb_write(&a, path, 10), 0);
	lb_release(&a);
	lb_release(&c);
}

static void remove_run(struct rundir *r)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", r->dir, r->out);
	assert_int_equal(system(cmd), 0);
}

/* Runs a python3 check of the report at r->out; 0 when every assertion held. */
static int python_check(const struct rundir *r, const char *code)
{
	char script[] = "/tmp/pfs-an-cli-py-XXXXXX";
	char cmd[256];
	int fd, rc;
	FILE *f;

	fd = mkstemp(script);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "import json, sys\nd = json.load(open(sys.argv[1]))\n%s\n", code);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s", script, r->out);
	rc = system(cmd);
	unlink(script);
	return rc;
}

static void test_report_json_schema(void **state)
{
	struct rundir r;
	char line[16];

	(void)state;
	make_run(&r, false);
	assert_int_equal(CLI("report", "--format", "json", "-o", r.out, r.dir), 0);
	snprintf(line, sizeof(line), "%d", app_line);
	setenv("PFS_AN_LINE", line, 1);
	assert_int_equal(python_check(&r,
		"import os\n"
		"assert d['version'] == 1 and d['mode'] == 'fast'\n"
		"P = d['processes']\n"
		"assert [p['pid'] for p in P] == [500, 501]\n"
		"keys = {'pid','ppid','command','totals','sites','storms'}\n"
		"tkeys = {'first_touch_faults','cow_faults','allocations','bytes_allocated',"
		"'prefaulted_pages'}\n"
		"skeys = tkeys | {'id','kind','frames','policy'}\n"
		"fkeys = {'function','file','line','module','address'}\n"
		"for p in P:\n"
		"  assert keys <= set(p), p.keys()\n"
		"  assert tkeys <= set(p['totals'])\n"
		"  assert p['storms'] == []\n"
		"  assert p['command'] == 'app --in data file'\n"
		"  for s in p['sites']:\n"
		"    assert skeys <= set(s) and s['policy'] is None\n"
		"    for f in s['frames']: assert fkeys <= set(f)\n"
		"    assert isinstance(s['allocations'], int)\n"
		"  for k in tkeys: assert p['totals'][k] == sum(s[k] for s in p['sites'])\n"
		"  order = [(s['first_touch_faults']+s['cow_faults'], s['bytes_allocated'],"
		" s['allocations']) for s in p['sites']]\n"
		"  assert order == sorted(order, reverse=True), order\n"
		"a, c = P\n"
		"assert a['ppid'] == 1 and c['ppid'] == 500\n"
		"assert a['ended'] and a['exit_status'] == 0 and not c['ended']\n"
		"assert c['exit_status'] is None and a['children'] == [501]\n"
		"s = a['sites']\n"
		"assert [x['kind'] for x in s] == ['mmap', 'malloc']\n"
		"assert s[1]['allocations'] == 40 and s[1]['bytes_allocated'] == 4000\n"
		"assert s[0]['bytes_allocated'] == 1 << 20 and s[0]['bytes_live_at_end'] == 1 << 20\n"
		"f = s[0]['frames']\n"
		"assert f[0]['function'] == 'pfs_an_cli_site', f\n"
		"assert f[0]['file'] == 'test_an_cli.c', f\n"
		"line = int(os.environ['PFS_AN_LINE'])\n"
		"assert line <= f[0]['line'] <= line + 4, f\n"
		"assert f[0]['module'] == 'test_an_cli' and f[0]['address'].startswith('0x')\n"
		"assert f[1]['function'] is None and f[1]['module'] is None\n"
		"assert f[1]['address'] == '0x7f0000000100'\n"
		"ids = {x['id'] for p in P for x in p['sites']}\n"
		"# mmap and malloc in 500, calloc in 501, and 501's malloc shares 500's id\n"
		"assert len(ids) == 3, ids\n"
		"# the same stack and kind in both processes: one id\n"
		"m = [x for x in c['sites'] if x['kind'] == 'malloc'][0]\n"
		"assert m['id'] == s[1]['id'] and m['frames'] == s[1]['frames']\n"
		"g = [x for x in c['sites'] if x['kind'] == 'calloc'][0]\n"
		"assert g['frames'][0]['function'] is None and g['frames'][0]['module'] == 'libgone.so'\n"
		"assert any('libgone.so' in w for w in d['warnings'])\n"
		"assert any('did not end' in w for w in d['warnings'])\n"), 0);
	/* --top N: the run's N sites with the most faults (here bytes: no faults), with their process */
	assert_int_equal(CLI("report", "--format=json", "--top", "1", "-o", r.out, r.dir), 0);
	assert_int_equal(python_check(&r,
		"P = d['processes']\n"
		"assert [len(p['sites']) for p in P] == [1, 0], [len(p['sites']) for p in P]\n"
		"s = P[0]['sites'][0]\n"
		"assert s['kind'] == 'mmap' and s['rank'] == 1\n"
		"assert d['top_sites'] == [{'pid': 500, 'exec_gen': 0, 'id': s['id'], "
		"'first_touch_faults': 0, 'cow_faults': 0, 'bytes_allocated': 1 << 20}], d['top_sites']\n"
		"assert P[1]['sites_total'] == 2 and P[1]['sites_shown'] == 2\n"), 0);
	remove_run(&r);
}

static void test_report_corrupt_still_reports(void **state)
{
	struct rundir r;
	char foreign[128];

	(void)state;
	make_run(&r, true);
	snprintf(foreign, sizeof(foreign), "%s/zz.pfslog", r.dir);
	{
		FILE *f = fopen(foreign, "w");

		assert_non_null(f);
		fputs("GIF89a not a log", f);
		fclose(f);
	}
	/* exit status 1, and the report of what could be read */
	assert_int_equal(CLI("report", "--format", "json", "-o", r.out, r.dir), 1);
	assert_int_equal(python_check(&r,
		"P = d['processes']\n"
		"assert [p['pid'] for p in P] == [500, 501]\n"
		"c = P[1]\n"
		"assert c['bad_records'] == 1\n"
		"# the record before the bad one is gone with its block; block 1 is read\n"
		"assert [s['kind'] for s in c['sites']] == ['malloc']\n"
		"assert any('two.pfslog: offset' in w for w in d['warnings'])\n"
		"assert any('zz.pfslog' in w and 'not a pfshim log' in w for w in d['warnings'])\n"), 0);
	remove_run(&r);
}

static void test_report_text(void **state)
{
	struct rundir r;
	char *text;

	(void)state;
	make_run(&r, false);
	assert_int_equal(CLI("report", "-o", r.out, "--top", "1", r.dir), 0);
	assert_non_null(text = lb_read_text(r.out));
	assert_non_null(strstr(text, "# processes: 2"));
	assert_non_null(strstr(text, "# mode:      fast"));
	/* the child indented under its parent in the tree */
	assert_non_null(strstr(text, "\n  500     app --in data file"));
	assert_non_null(strstr(text, "\n    501     app --in data file"));
	assert_non_null(strstr(text, "pfs_an_cli_site (test_an_cli.c:"));
	assert_non_null(strstr(text, "[test_an_cli]"));
	assert_non_null(strstr(text, "0x7f0000000100 [?]"));
	assert_non_null(strstr(text, "more site"));	/* --top 1 left some out */
	assert_non_null(strstr(text, "# Warnings"));
	assert_null(strstr(text, "\033["));	/* a file gets no colour */
	free(text);
	remove_run(&r);
}

/* -o FILE: never through a symbolic link, never a file with other names; the user's own replaced. */
static void test_output_file(void **state)
{
	struct rundir r;
	char target[128], sym[128], other[128], *text;
	FILE *f;

	(void)state;
	make_run(&r, false);
	snprintf(target, sizeof(target), "%s.target", r.dir);
	snprintf(sym, sizeof(sym), "%s.link", r.dir);
	snprintf(other, sizeof(other), "%s.other", r.dir);
	f = fopen(target, "w");
	assert_non_null(f);
	fputs("keep me\n", f);
	fclose(f);
	assert_int_equal(symlink(target, sym), 0);
	assert_int_equal(CLI("report", "-o", sym, r.dir), PFS_EXIT_BAD_LOGS);
	assert_int_equal(CLI("diff", "-o", sym, r.dir, r.dir), PFS_EXIT_BAD_LOGS);
	assert_int_equal(link(target, other), 0);	/* a second name: not truncated either */
	assert_int_equal(CLI("report", "-o", target, r.dir), PFS_EXIT_BAD_LOGS);
	assert_non_null(text = lb_read_text(target));
	assert_string_equal(text, "keep me\n");
	free(text);
	unlink(other);
	assert_int_equal(CLI("report", "-o", target, r.dir), PFS_EXIT_OK);
	assert_non_null(text = lb_read_text(target));
	assert_int_equal(strncmp(text, "# pfshim report\n", 16), 0);
	free(text);
	unlink(sym);
	unlink(target);
	remove_run(&r);
}

static void test_exit_codes(void **state)
{
	int saved = dup(1), saved_err = dup(2), null = open("/dev/null", O_WRONLY);

	(void)state;
	/* the help texts and messages are not what is tested here */
	assert_true(saved >= 0 && saved_err >= 0 && null >= 0);
	fflush(NULL);
	dup2(null, 1);
	dup2(null, 2);
	assert_int_equal(CLI("--version"), PFS_EXIT_OK);
	assert_int_equal(CLI("--help"), PFS_EXIT_OK);
	assert_int_equal(CLI("help"), PFS_EXIT_OK);
	assert_int_equal(CLI("help", "record"), PFS_EXIT_OK);
	assert_int_equal(CLI("report", "--help"), PFS_EXIT_OK);
	assert_int_equal(lb_cli((char *[]){"pfshim", NULL}), PFS_EXIT_USAGE);
	assert_int_equal(CLI("frobnicate"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("--frobnicate"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("report", "--frobnicate", "/tmp"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("report"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("report", "--top", "x", "/tmp"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("report", "--top"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("report", "--format", "yaml", "/tmp"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("report", "--format", "flamegraphz", "/tmp"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("diff", "a"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("diff", "a", "b", "c"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("diff", "--format", "svg", "a", "b"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("diff", "-o", "/dev/null", "/nonexistent/a", "/nonexistent/b"),
			 PFS_EXIT_BAD_LOGS);
	/* advise: a missing run is a bad log (1), a bad command line 2 */
	assert_int_equal(CLI("advise", "/nonexistent/run"), PFS_EXIT_BAD_LOGS);
	assert_int_equal(CLI("advise"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("advise", "--verify"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("advise", "-n", "0", "--verify", "--", "true"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("advise", "--policy", "populate", "/tmp"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("record"), PFS_EXIT_USAGE);
	assert_int_equal(CLI("record", "--mode", "slow", "--", "true"), PFS_EXIT_USAGE);
	/* a directory without logs, a path that does not exist: reported, status 1 */
	assert_int_equal(CLI("report", "-o", "/dev/null", "/"), PFS_EXIT_BAD_LOGS);
	assert_int_equal(CLI("report", "-o", "/dev/null", "/nonexistent/run"), PFS_EXIT_BAD_LOGS);
	fflush(NULL);
	dup2(saved, 1);
	dup2(saved_err, 2);
	close(saved);
	close(saved_err);
	close(null);
}

static void test_record(void **state)
{
	char dir[] = "/tmp/pfs-an-rec-XXXXXX", cwd[4096], empty[] = "/tmp/pfs-an-pre-XXXXXX";
	char out[128], cmd[512];
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	fd = mkstemp(empty);	/* an existing LD_PRELOAD entry, kept after ours */
	assert_true(fd >= 0);
	close(fd);
	setenv("PFSHIM_LIB", "/dev/null", 1);
	setenv("LD_PRELOAD", empty, 1);
	assert_int_equal(chdir(dir), 0);

	/* the program's exit status, and its environment as the contract says */
	snprintf(cmd, sizeof(cmd),
		 "test \"$LD_PRELOAD\" = /dev/null:%s && test \"$PFSHIM_QUIET\" = 1 && "
		 "test \"$PFSHIM_OUT\" = \"$(pwd)/logs\" && test \"$PFSHIM_MODE\" = exact && "
		 "test \"$PFSHIM_POLICY\" = 'populate if size>=1M' && test -d logs && "
		 "test -z \"${PFSHIM_LIB+set}\" && exit 3",
		 empty);
	assert_int_equal(CLI("record", "-o", "logs", "--mode", "exact", "--policy",
			     "populate if size>=1M", "--", "sh", "-c", cmd), 3);
	/* without -o: ./pfshim.<pid of the program>, made absolute */
	assert_int_equal(CLI("record", "sh", "-c",
			     "test \"$PFSHIM_OUT\" = \"$(pwd)/pfshim.$$\" && test -z \"$PFSHIM_MODE\" "
			     "|| exit 9"), 0);
	/* a missing parent is made, 0700; a directory with logs in it is refused unless --force */
	assert_int_equal(CLI("record", "-o", "new/deeper/logs", "--", "sh", "-c",
			     "test -d \"$PFSHIM_OUT\" && test \"$(stat -c %a new/deeper)\" = 700"), 0);
	{
		struct stat st;

		/*
		 * The shim was not loaded (PFSHIM_LIB is /dev/null): the directory is removed when
		 * nothing was logged, or holds only what record logged from outside (the kernel's
		 * fault events of the untraced program, where they can be opened).
		 */
		DIR *d = opendir("new/deeper/logs");
		if (d) {
			struct dirent *e;
			while ((e = readdir(d)))
				if (e->d_name[0] != '.')
					assert_non_null(strstr(e->d_name, ".outside."));
			closedir(d);
		}
		assert_int_equal(mkdir("old", 0700), 0);
		fd = open("old/pfshim.1.pfslog", O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
		assert_int_equal(CLI("record", "-o", "old", "--", "touch", "ran"), PFS_EXIT_USAGE);
		assert_int_equal(stat("ran", &st), -1);	/* not run */
		assert_int_equal(stat("old/pfshim.1.pfslog", &st), 0);
		assert_int_equal(CLI("record", "--force", "-o", "old", "--", "touch", "ran"), 0);
		assert_int_equal(stat("ran", &st), 0);
		assert_int_equal(stat("old/pfshim.1.pfslog", &st), -1);
		/* a file where a directory should be: cannot run */
		assert_int_equal(CLI("record", "-o", "ran/logs", "--", "true"), PFS_EXIT_CANNOT_RUN);
	}
	/* a program that exits 127 itself is a status, as any other */
	assert_int_equal(CLI("record", "--", "sh", "-c", "exit 127"), 127);
	/* killed by a signal: 128 + the signal */
	assert_int_equal(CLI("record", "--", "sh", "-c", "kill -TERM $$"), 128 + 15);
	/* cannot be run */
	assert_int_equal(CLI("record", "--", "/nonexistent/program"), PFS_EXIT_CANNOT_RUN);
	/* no shim to preload */
	setenv("PFSHIM_LIB", "/nonexistent/libpfshim.so", 1);
	assert_int_equal(CLI("record", "--", "true"), PFS_EXIT_CANNOT_RUN);

	unsetenv("PFSHIM_LIB");
	unsetenv("LD_PRELOAD");
	assert_int_equal(chdir(cwd), 0);
	unlink(empty);
	snprintf(out, sizeof(out), "rm -rf '%s'", dir);
	assert_int_equal(system(out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_json_schema),
		cmocka_unit_test(test_report_corrupt_still_reports),
		cmocka_unit_test(test_report_text),
		cmocka_unit_test(test_output_file),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_record),
	};

	/* the report goes to a file; keep the warnings it also prints out of the way */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
