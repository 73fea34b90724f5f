/*
 * pfshim diff on hand-built runs: the same sites at other load addresses
 * (ASLR, a rebuild) are paired by their symbolized frames, children by
 * command and position in the process tree, and the changes are counted
 * and ranked.
 */
#include <errno.h>
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

#define MS 1000000ull

LB_SITE_FN(pfs_diff_storm_site)

LB_SITE_FN(pfs_diff_quiet_site)

LB_SITE_FN(pfs_diff_new_site)

static char dir[64], out[96];

struct run_shape {
	uint64_t pid;		/* the parent; children pid+1, pid+2, ... */
	uint64_t shift;		/* added to the load address and every frame: another ASLR draw */
	uint32_t storm_pages;	/* per scan, in 5 scans */
	bool new_site;		/* one more site, touched once */
	unsigned kids;		/* forked children, each "app --worker" with a quiet site */
};

static uint64_t ra(int (*fn)(int), uint64_t shift)
{
	return (uint64_t)(uintptr_t)fn + 1 + shift;
}

/* One process image's log: module at its shifted address, quiet and storm sites. */
static void write_proc(const char *path, const struct run_shape *r, uint64_t pid, uint64_t ppid,
		       bool forked, unsigned kids, uint32_t storm_pages)
{
	static const char parent_cmd[] = "/opt/build1/app\0--storm\0", kid_cmd[] = "app\0--worker\0";
	const struct lb_self *self;
	static struct lb_self me;
	uint64_t t0 = 1000 * MS + pid * MS, fq[2], fs[2], fn[2];
	struct lb b;

	if (!me.path[0])
		assert_int_equal(lb_self_module(&me), 0);
	self = &me;
	fq[0] = ra(pfs_diff_quiet_site, r->shift);
	fs[0] = ra(pfs_diff_storm_site, r->shift);
	fn[0] = ra(pfs_diff_new_site, r->shift);
	fq[1] = fs[1] = fn[1] = ra(pfs_diff_new_site, r->shift) + 2;	/* a caller frame */
	lb_init(&b, pid, t0);
	if (forked) {
		struct pfs_file_header h;

		memcpy(&h, b.buf, sizeof(h));
		h.flags |= PFS_FILE_FORKED;
		memcpy(b.buf, &h, sizeof(h));
	}
	lb_proc_start(&b, pid, ppid, t0, 0, "/usr/bin/app", forked ? kid_cmd : parent_cmd,
		      forked ? sizeof(kid_cmd) - 1 : sizeof(parent_cmd) - 1);
	lb_module(&b, 1, 1, self->base + r->shift, self->start + r->shift, self->end + r->shift,
		  self->path, self->build_id, (uint8_t)self->build_id_len);
	lb_stack(&b, 2, 1, fq, 2);
	lb_stack(&b, 3, 2, fs, 2);
	lb_stack(&b, 4, 3, fn, 2);
	lb_alloc_at(&b, 5, t0 + MS, 2, PFS_KIND_MMAP, 0x10000000, 64 << 20);
	for (unsigned i = 1; i <= 100; i++) {
		uint64_t t = t0 + i * 10 * MS;

		lb_touch(&b, t, 0, 1, PFS_KIND_MALLOC, 5, 0);
		if (storm_pages && i >= 50 && i < 55)
			lb_touch(&b, t, 5, 2, PFS_KIND_MMAP, storm_pages, 0);
		if (r->new_site && !forked && i == 60)
			lb_touch(&b, t, 0, 3, PFS_KIND_MALLOC, 7, 0);
		lb_scan(&b, t, 5, PFS_SCAN_PERIODIC);
	}
	for (unsigned k = 0; k < kids; k++)
		lb_fork(&b, 10 + k, pid + 1 + k);
	lb_proc_end_at(&b, 20, t0 + 1005 * MS);
	assert_int_equal(lb_write(&b, path, b.len), 0);
	lb_release(&b);
}

static void write_run(const char *sub, const struct run_shape *r)
{
	char d[128], path[192];

	snprintf(d, sizeof(d), "%s/%s", dir, sub);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(path, sizeof(path), "%s/app.%llu.pfslog", d, (unsigned long long)r->pid);
	write_proc(path, r, r->pid, 1, false, r->kids, r->storm_pages);
	for (unsigned k = 0; k < r->kids; k++) {
		snprintf(path, sizeof(path), "%s/app.%llu.pfslog", d,
			 (unsigned long long)(r->pid + 1 + k));
		write_proc(path, r, r->pid + 1 + k, r->pid, true, 0, 0);
	}
}

static int diff_json(const char *a, const char *b)
{
	char pa[128], pb[128];
	char *argv[] = {"pfshim", "diff", "--format", "json", "-o", out, pa, pb, NULL};

	snprintf(pa, sizeof(pa), "%s/%s", dir, a);
	snprintf(pb, sizeof(pb), "%s/%s", dir, b);
	fflush(NULL);
	return pfs_cli_main(8, argv);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/pfs-an-diff-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(out, sizeof(out), "%s.out", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return lb_remove(dir, out);
}

/* Other load addresses, fewer storm pages, one new site: paired, counted, ranked. */
static void test_sites_paired_across_load_addresses(void **state)
{
	const struct run_shape a = {.pid = 100, .storm_pages = 400, .kids = 1};
	const struct run_shape b = {.pid = 200, .shift = 0x40000000, .storm_pages = 100,
				    .new_site = true, .kids = 1};

	(void)state;
	write_run("a", &a);
	write_run("b", &b);
	assert_int_equal(diff_json("a", "b"), PFS_EXIT_OK);
	assert_int_equal(lb_python_check(
		"d = json.load(open(path))\n"
		"ps = d['processes']\n"
		"assert len(ps) == 2 and all(p['only_in'] is None for p in ps), ps\n"
		"p = [p for p in ps if p['a']['pid'] == 100][0]\n"
		"assert p['b']['pid'] == 200, p['b']\n"
		"fn = lambda s: s['frames'][0]['function']\n"
		"s = p['sites'][0]\n"
		"assert fn(s) == 'pfs_diff_storm_site' and s['only_in'] is None, s\n"
		"assert s['a']['first_touch_faults'] == 2000 and s['b']['first_touch_faults'] == 500, s\n"
		"assert s['change']['faults'] == -1500 and s['verdict'] == 'better', s\n"
		"assert s['a']['storms'] == 1 and s['b']['storms'] == 1, s\n"
		"q = [x for x in p['sites'] if fn(x) == 'pfs_diff_quiet_site'][0]\n"
		"assert q['only_in'] is None and q['change']['faults'] == 0 and q['verdict'] == 'same', q\n"
		"assert q['a']['touch_first_ns'] == 10000000 and q['a']['touch_phase_ns'] == 990000000, q\n"
		"n = [x for x in p['sites'] if fn(x) == 'pfs_diff_new_site'][0]\n"
		"assert n['only_in'] == 'b' and n['a'] is None and n['change']['faults'] == 7, n\n"
		"assert n['verdict'] == 'worse', n\n"
		"assert [fn(x) for x in p['sites']][:2] == ['pfs_diff_storm_site', 'pfs_diff_new_site']\n"
		"assert p['change']['faults'] == -1493 and p['wall_ns_change'] == 0, p['change']\n"
		"k = [p for p in ps if p['a']['pid'] == 101][0]\n"
		"assert k['b']['pid'] == 201 and k['command'] == 'app --worker', k\n"
		"assert d['totals']['change']['faults'] == -1493, d['totals']\n", out), 0);
}

/* Children with one command are paired in start order; an extra one is only in B. */
static void test_children_paired_by_tree_position(void **state)
{
	const struct run_shape a = {.pid = 300, .storm_pages = 400, .kids = 2};
	const struct run_shape b = {.pid = 400, .shift = 0x1000000, .storm_pages = 400, .kids = 3};

	(void)state;
	write_run("c", &a);
	write_run("d", &b);
	assert_int_equal(diff_json("c", "d"), PFS_EXIT_OK);
	assert_int_equal(lb_python_check(
		"d = json.load(open(path))\n"
		"ps = d['processes']\n"
		"pairs = sorted((p['a'] and p['a']['pid'], p['b'] and p['b']['pid']) for p in ps\n"
		"               if p['a'] and p['b'])\n"
		"assert pairs == [(300, 400), (301, 401), (302, 402)], pairs\n"
		"only = [p for p in ps if p['only_in']]\n"
		"assert len(only) == 1 and only[0]['only_in'] == 'b' and only[0]['b']['pid'] == 403, only\n"
		"assert only[0]['a'] is None and only[0]['verdict'] == 'worse', only[0]\n", out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sites_paired_across_load_addresses),
		cmocka_unit_test(test_children_paired_by_tree_position),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
