/*
 * What `pfshim report` is asked to show, on a hand-built run of two
 * processes: --pid, --comm, --site, --module, --since/--until, --top (the
 * run's top sites, each with its process) and --depth, in the JSON, the
 * text, the folded stacks, the Perfetto trace, the SVG and the HTML page;
 * and the options' errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
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
#define T0 (1000 * MS)

LB_SITE_FN(pfs_flt_storm_site)
LB_SITE_FN(pfs_flt_quiet_site)
LB_SITE_FN(pfs_flt_d0)
LB_SITE_FN(pfs_flt_d1)
LB_SITE_FN(pfs_flt_d2)
LB_SITE_FN(pfs_flt_d3)
LB_SITE_FN(pfs_flt_d4)
LB_SITE_FN(pfs_flt_d5)
LB_SITE_FN(pfs_flt_d6)
LB_SITE_FN(pfs_flt_d7)

static char dir[64], out[96];

/* pfshim report ARGS... -o out dir */
#define REPORT(...) lb_cli((char *[]){"pfshim", "report", __VA_ARGS__, "-o", out, dir, NULL})
#define CHECK(code) assert_int_equal(lb_python_check(code, out), 0)

/*
 * pid 77: the storm run (storm site 2000 pages at 500-540 ms, quiet site 5
 * pages every 10 ms); pid 78, its child `other --x`: a site eight frames
 * deep (100 pages at 198 ms from its start) and one in libfake.so (50 at 298).
 */
static int setup(void **state)
{
	static const char cmd[] = "other\0--x\0";
	uint64_t deep[8] = {
		(uintptr_t)&pfs_flt_d0 + 1, (uintptr_t)&pfs_flt_d1 + 1, (uintptr_t)&pfs_flt_d2 + 1,
		(uintptr_t)&pfs_flt_d3 + 1, (uintptr_t)&pfs_flt_d4 + 1, (uintptr_t)&pfs_flt_d5 + 1,
		(uintptr_t)&pfs_flt_d6 + 1, (uintptr_t)&pfs_flt_d7 + 1,
	};
	uint64_t fake[1] = {0x7f1200001234};
	struct lb_self self;
	char path[128];
	struct lb b;

	(void)state;
	if (lb_self_module(&self))
		return -1;
	strcpy(dir, "/tmp/pfs-an-flt-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(out, sizeof(out), "%s.out", dir);
	snprintf(path, sizeof(path), "%s/app.pfslog", dir);
	if (lb_write_storm_run(path, 77, T0, (uintptr_t)&pfs_flt_storm_site + 1,
			       (uintptr_t)&pfs_flt_quiet_site + 1))
		return -1;

	lb_init(&b, 78, T0 + 2 * MS);
	lb_proc_start(&b, 78, 77, T0 + 2 * MS, 0, "/usr/bin/other", cmd, sizeof(cmd) - 1);
	lb_module(&b, 1, 1, self.base, self.start, self.end, self.path, self.build_id,
		  (uint8_t)self.build_id_len);
	lb_module(&b, 2, 2, 0x7f1200000000, 0x7f1200000000, 0x7f1200100000, "/nonexistent/libfake.so",
		  NULL, 0);
	lb_stack(&b, 3, 1, deep, 8);
	lb_stack(&b, 4, 2, fake, 1);
	lb_alloc_at(&b, 5, T0 + 3 * MS, 1, PFS_KIND_MMAP, 0x20000000, 1 << 20);
	lb_alloc_at(&b, 6, T0 + 4 * MS, 2, PFS_KIND_MMAP, 0x30000000, 1 << 20);
	lb_touch(&b, T0 + 200 * MS, 5, 1, PFS_KIND_MMAP, 100, 0);
	lb_scan(&b, T0 + 200 * MS, 100, PFS_SCAN_PERIODIC);
	lb_touch(&b, T0 + 300 * MS, 6, 2, PFS_KIND_MMAP, 50, 0);
	lb_scan(&b, T0 + 300 * MS, 50, PFS_SCAN_PERIODIC);
	lb_proc_end_at(&b, 7, T0 + 400 * MS);
	snprintf(path, sizeof(path), "%s/other.pfslog", dir);
	if (lb_write(&b, path, b.len))
		return -1;
	lb_release(&b);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return lb_remove(dir, out);
}

/* Shared by the JSON checks: the report as d, its processes by pid, a site's first frame. */
#define JSON_PRELUDE                                                                   \
	"d = json.load(open(path))\n"                                                  \
	"P = {p['pid']: p for p in d['processes']}\n"                                  \
	"def fn(s): return s['frames'][0]['function'] if s['frames'] else None\n"     \
	"def names(pid): return [fn(s) for s in P[pid]['sites']]\n"

static void test_unfiltered_top_sites(void **state)
{
	(void)state;
	assert_int_equal(REPORT("--format", "json"), 0);
	CHECK(JSON_PRELUDE
	      "assert sorted(P) == [77, 78] and d['processes_in_run'] == 2\n"
	      "assert 'filter' not in d\n"
	      "top = [(t['pid'], t['first_touch_faults']) for t in d['top_sites']]\n"
	      "assert top == [(77, 2000), (77, 500), (78, 100), (78, 50)], top\n"
	      "assert [s['rank'] for s in P[77]['sites']] == [1, 2]\n");
}

static void test_pid_and_comm(void **state)
{
	(void)state;
	assert_int_equal(REPORT("--format", "json", "--pid", "78"), 0);
	CHECK(JSON_PRELUDE
	      "assert sorted(P) == [78] and d['processes_in_run'] == 2, sorted(P)\n"
	      "assert d['filter']['pids'] == [78] and d['filter']['comm'] is None\n"
	      "assert [t['pid'] for t in d['top_sites']] == [78, 78]\n");
	assert_int_equal(REPORT("--format", "json", "--pid", "1,77"), 0);
	CHECK(JSON_PRELUDE "assert sorted(P) == [77], sorted(P)\n");
	/* argv[0]'s base name, the executable's, or the whole command line */
	assert_int_equal(REPORT("--format", "json", "--comm", "oth*"), 0);
	CHECK(JSON_PRELUDE "assert sorted(P) == [78], sorted(P)\n");
	assert_int_equal(REPORT("--format", "json", "--comm", "app"), 0);
	CHECK(JSON_PRELUDE "assert sorted(P) == [77], sorted(P)\n");
	assert_int_equal(REPORT("--format", "json", "--comm", "*--storm"), 0);
	CHECK(JSON_PRELUDE "assert sorted(P) == [77], sorted(P)\n");
	assert_int_equal(REPORT("--format", "json", "--comm", "nothing"), 0);
	CHECK(JSON_PRELUDE "assert P == {} and d['top_sites'] == []\n");
}

static void test_site_and_module(void **state)
{
	(void)state;
	/* any frame: d5 is the sixth frame of the deep site */
	assert_int_equal(REPORT("--format", "json", "--site", "pfs_flt_d5"), 0);
	CHECK(JSON_PRELUDE
	      "assert names(77) == [] and names(78) == ['pfs_flt_d0'], (names(77), names(78))\n"
	      "# the process's totals stay whole\n"
	      "assert P[78]['totals']['first_touch_faults'] == 150\n"
	      "# the storm's top site is not shown: nor is the storm\n"
	      "assert P[77]['storms'] == []\n");
	assert_int_equal(REPORT("--format", "json", "--site", "pfs_flt_*_site"), 0);
	CHECK(JSON_PRELUDE
	      "assert names(77) == ['pfs_flt_storm_site', 'pfs_flt_quiet_site'] and names(78) == []\n"
	      "assert len(P[77]['storms']) == 1\n");
	/* a frame without a symbol: by its module+offset name */
	assert_int_equal(REPORT("--format", "json", "--site", "libfake.so+0x*"), 0);
	CHECK(JSON_PRELUDE "assert names(78) == [None] and names(77) == []\n");
	assert_int_equal(REPORT("--format", "json", "--module", "libfake*"), 0);
	CHECK(JSON_PRELUDE
	      "assert names(78) == [None] and P[78]['sites'][0]['frames'][0]['module'] == 'libfake.so'\n");
	assert_int_equal(REPORT("--format", "json", "--module", "test_an_filter"), 0);
	CHECK(JSON_PRELUDE
	      "assert names(77) == ['pfs_flt_storm_site', 'pfs_flt_quiet_site']\n"
	      "assert names(78) == ['pfs_flt_d0']\n");
}

static void test_time_window(void **state)
{
	(void)state;
	assert_int_equal(REPORT("--format", "json", "--since", "500ms", "--until", "0.54"), 0);
	CHECK(JSON_PRELUDE
	      "s = P[77]['sites']\n"
	      "assert [(fn(x), x['first_touch_faults']) for x in s] == "
	      "[('pfs_flt_storm_site', 2000), ('pfs_flt_quiet_site', 25)], s\n"
	      "assert P[77]['totals']['first_touch_faults'] == 2025\n"
	      "assert [x['first_touch_pages'] for x in s] == [2000, 25], s\n"
	      "# allocations and evidence stay the whole run's\n"
	      "assert s[0]['allocations'] == 1 and s[1]['allocations'] == 0\n"
	      "assert s[1]['evidence']['touched_pages'] == 500, s[1]['evidence']\n"
	      "assert len(P[77]['storms']) == 1\n"
	      "assert P[78]['sites'] == [] and P[78]['totals']['first_touch_faults'] == 0\n"
	      "assert d['filter']['since_ns'] == 500000000 and d['filter']['until_ns'] == 540000000\n");
	/* after the storm: the quiet site alone, 41 scans of 5 pages from 600 ms */
	assert_int_equal(REPORT("--format", "json", "--since", "600000us"), 0);
	CHECK(JSON_PRELUDE
	      "assert [(fn(x), x['first_touch_faults']) for x in P[77]['sites']] == "
	      "[('pfs_flt_quiet_site', 205)], P[77]['sites']\n"
	      "assert P[77]['storms'] == []\n"
	      "assert names(78) == []\n");
	/* pid 78's deep site at 198 ms from its start, its libfake.so site at 298 ms */
	assert_int_equal(REPORT("--format", "json", "--until", "250ms", "--pid", "78"), 0);
	CHECK(JSON_PRELUDE "assert names(78) == ['pfs_flt_d0'], names(78)\n");
}

static void test_top_and_depth(void **state)
{
	char *text;

	(void)state;
	assert_int_equal(REPORT("--format", "json", "--top", "3", "--depth", "3"), 0);
	CHECK(JSON_PRELUDE
	      "assert [t['pid'] for t in d['top_sites']] == [77, 77, 78]\n"
	      "assert names(77) == ['pfs_flt_storm_site', 'pfs_flt_quiet_site'] and len(P[78]['sites']) == 1\n"
	      "deep = P[78]['sites'][0]\n"
	      "assert [x['function'] for x in deep['frames']] == ['pfs_flt_d0', 'pfs_flt_d1', 'pfs_flt_d2']\n"
	      "assert deep['frames_cut'] == 5\n");
	/* text: the run's top sites with their processes, then per process a pointer back to them */
	assert_int_equal(REPORT("--top", "2"), 0);
	assert_non_null(text = lb_read_text(out));
	assert_non_null(strstr(text, "# Processes by faults"));
	assert_non_null(strstr(text, "# Top sites of the run, by faults:"));
	assert_non_null(strstr(text, "  pid 77 app --storm\n            pfs_flt_storm_site ("));
	assert_non_null(strstr(text, "(frames above: the run's site 1)"));
	assert_non_null(strstr(text, "(2 more sites in the run; --top 0 lists all)"));
	/* pid 78's own list: its deep site with five frames (the default depth), then the cut */
	assert_non_null(strstr(text, "pfs_flt_d4 ("));
	assert_null(strstr(text, "pfs_flt_d5 ("));
	assert_non_null(strstr(text, "... (3 more frames; --depth all shows them)"));
	free(text);
	assert_int_equal(REPORT("--depth", "all", "--pid", "78"), 0);
	assert_non_null(text = lb_read_text(out));
	assert_non_null(strstr(text, "pfs_flt_d7 ("));
	assert_non_null(strstr(text, "# processes: 1 of 2\n# filter:    --pid 78\n"));
	assert_null(strstr(text, "# Top sites of the run"));	/* one process: its own list says it */
	free(text);
}

static void test_other_formats(void **state)
{
	(void)state;
	assert_int_equal(REPORT("--format", "folded", "--site", "pfs_flt_d*", "--depth", "2"), 0);
	CHECK("lines = open(path).read().splitlines()\n"
	      "assert lines == ['other --x (pid 78);[...];pfs_flt_d1;pfs_flt_d0;[mmap] 100'], lines\n");
	assert_int_equal(REPORT("--format", "folded", "--top", "1"), 0);
	CHECK("lines = open(path).read().splitlines()\n"
	      "assert len(lines) == 1 and lines[0].endswith('pfs_flt_storm_site;[mmap] 2000'), lines\n");
	assert_int_equal(REPORT("--format", "perfetto", "--pid", "78"), 0);
	CHECK("ev = json.load(open(path))['traceEvents']\n"
	      "assert {e['pid'] for e in ev} == {78}, {e['pid'] for e in ev}\n");
	/* a time window: the counter's buckets in it (and the drop to 0 where the series ends) */
	assert_int_equal(REPORT("--format", "perfetto", "--pid", "77", "--since", "500ms", "--until",
				"540ms"), 0);
	CHECK("ev = json.load(open(path))['traceEvents']\n"
	      "ts = [e['ts'] for e in ev if e['ph'] == 'C']\n"
	      "assert ts[:-1] == [500000, 510000, 520000, 530000, 540000], ts\n"
	      "xs = [e['name'] for e in ev if e['ph'] == 'X']\n"
	      "assert len(xs) == 1 and xs[0].startswith('storm: pfs_flt_storm_site'), xs\n");
	assert_int_equal(REPORT("--format", "svg", "--comm", "app", "--top", "1"), 0);
	CHECK("ns = '{http://www.w3.org/2000/svg}'\n"
	      "root = ET.parse(path).getroot()\n"
	      "bars = [g for g in root.iter(ns + 'g') if g.get('class') == 'site']\n"
	      "assert len(bars) == 1\n"
	      "text = ' '.join(t.text or '' for t in root.iter(ns + 'text'))\n"
	      "assert 'pid 78' not in text and 'pfs_flt_storm_site' in text, text\n");
}

/* The HTML page: its rows and flame graph follow the filters; text from the logs is escaped. */
static void test_html(void **state)
{
	static const char cmd[] = "<script>alert(1)</script>\0&\0\"q\"\0";
	char hostile[96], path[128], *argv[] = {"pfshim", "report", "--format", "html", "-o", out,
						hostile, NULL};
	struct lb b;

	(void)state;
	assert_int_equal(REPORT("--format", "html"), 0);
	CHECK("import html.parser\n"
	      "s = open(path).read()\n"
	      "# nothing that loads: no src or href attribute, no url() or @import in its style\n"
	      "assert not re.search(r'\\b(src|href)\\s*=|url\\(|@import', s) and \"Content-Security-Policy\" in s\n"
	      "rows = re.findall(r'<tr data-rank=\"(\\d+)\">.*?<span class=\"label\">([^<]*)</span>', s)\n"
	      "assert [r[1] for r in rows] == ['pfs_flt_storm_site', 'pfs_flt_quiet_site', 'pfs_flt_d0',"
	      " 'libfake.so+0x1234'], rows\n"
	      "flame = re.findall(r'<g data-x=\"[0-9.]+\" data-w=\"([0-9.]+)\" data-d=\"(\\d+)\" data-n=\"([^\"]*)\"', s)\n"
	      "w = {n: float(x) for x, d, n in flame}\n"
	      "assert w['all'] == 1000 and abs(w['pfs_flt_storm_site'] - 1000 * 2000 / 2650) < 0.1, w\n"
	      "class P(html.parser.HTMLParser): pass\n"
	      "P().feed(s)\n");
	assert_int_equal(REPORT("--format", "html", "--pid", "78", "--depth", "2"), 0);
	CHECK("s = open(path).read()\n"
	      "rows = re.findall(r'<tr data-rank=\"\\d+\">.*?</tr>', s)\n"
	      "assert len(rows) == 2 and all('>78</td>' in r for r in rows), rows\n"
	      "assert 'data-n=\"[...]\"' in s and 'data-n=\"pfs_flt_d1\"' in s and 'data-n=\"pfs_flt_d2\"' not in s\n"
	      "assert 'pfs_flt_storm_site' not in s\n");
	/* a command that is markup */
	snprintf(hostile, sizeof(hostile), "%s.hostile", dir);
	assert_int_equal(mkdir(hostile, 0700), 0);
	lb_init(&b, 90, T0);
	lb_proc_start(&b, 90, 1, T0, 0, "/usr/bin/<b>x</b>", cmd, sizeof(cmd) - 1);
	snprintf(path, sizeof(path), "%s/h.pfslog", hostile);
	assert_int_equal(lb_write(&b, path, b.len), 0);
	lb_release(&b);
	fflush(NULL);
	assert_int_equal(pfs_cli_main(7, argv), 0);
	CHECK("s = open(path).read()\n"
	      "assert '<script>alert' not in s and '<b>x' not in s\n"
	      "assert '&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;' in s\n");
	assert_int_equal(lb_remove(hostile, ""), 0);
}

static void test_bad_options(void **state)
{
	int saved = dup(2), null = open("/dev/null", O_WRONLY);

	(void)state;
	fflush(NULL);
	dup2(null, 2);
	assert_int_equal(REPORT("--since", "soon"), PFS_EXIT_USAGE);
	assert_int_equal(REPORT("--since", "-1s"), PFS_EXIT_USAGE);
	assert_int_equal(REPORT("--until", "5parsecs"), PFS_EXIT_USAGE);
	assert_int_equal(REPORT("--since", "2s", "--until", "1s"), PFS_EXIT_USAGE);
	assert_int_equal(REPORT("--depth", "0"), PFS_EXIT_USAGE);
	assert_int_equal(REPORT("--depth", "some"), PFS_EXIT_USAGE);
	assert_int_equal(REPORT("--pid", "x"), PFS_EXIT_USAGE);
	assert_int_equal(REPORT("--pid", "1,"), PFS_EXIT_USAGE);
	assert_int_equal(lb_cli((char *[]){"pfshim", "report", dir, "--module", NULL}), PFS_EXIT_USAGE);
	fflush(NULL);
	dup2(saved, 2);
	close(saved);
	close(null);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unfiltered_top_sites),
		cmocka_unit_test(test_pid_and_comm),
		cmocka_unit_test(test_site_and_module),
		cmocka_unit_test(test_time_window),
		cmocka_unit_test(test_top_and_depth),
		cmocka_unit_test(test_other_formats),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_bad_options),
	};

	return cmocka_run_group_tests_name("analyzer filters", tests, setup, teardown);
}
