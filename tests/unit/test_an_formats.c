/*
 * The report formats on one hand-built run with a storm: each output is
 * parsed by python3 as its consumer would (json, xml.etree, the folded
 * grammar) and its content checked: the storm's top site is the bursting
 * allocation's, the trace has its slice, the SVG its shaded storm.
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
#include <unistd.h>

#include <cmocka.h>

#include "../../analyzer/cli.h"
#include "test_an_logbuild.h"

#define MS 1000000ull
#define T0 (1000 * MS)

LB_SITE_FN(pfs_fmt_storm_site)

LB_SITE_FN(pfs_fmt_quiet_site)

static char dir[64], out[96];

static int cli(const char *fmt)
{
	char *argv[] = {"pfshim", "report", "--format", (char *)fmt, "-o", out, dir, NULL};

	fflush(NULL);
	return pfs_cli_main(7, argv);
}

static int setup(void **state)
{
	uint64_t fs[1], fq[1];
	char path[128];

	(void)state;
	fs[0] = (uintptr_t)&pfs_fmt_storm_site + 1;
	fq[0] = (uintptr_t)&pfs_fmt_quiet_site + 1;
	strcpy(dir, "/tmp/pfs-an-fmt-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(out, sizeof(out), "%s.out", dir);
	snprintf(path, sizeof(path), "%s/app.pfslog", dir);
	if (lb_write_storm_run(path, 77, T0, fs[0], fq[0]))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return lb_remove(dir, out);
}

/* python3 on the output at `out`: 0 when every assertion held. */
static int python_check(const char *code)
{
	return lb_python_check(code, out);
}

static void test_json_storms(void **state)
{
	(void)state;
	assert_int_equal(cli("json"), PFS_EXIT_OK);
	assert_int_equal(python_check(
		"d = json.load(open(path))\n"
		"p = d['processes'][0]\n"
		"assert len(p['storms']) == 1, p['storms']\n"
		"s = p['storms'][0]\n"
		"for k in ('start_ns', 'end_ns', 'faults', 'top_site', 'rate'): assert k in s, k\n"
		"site = [x for x in p['sites'] if x['id'] == s['top_site']][0]\n"
		"assert site['frames'][0]['function'] == 'pfs_fmt_storm_site', site\n"
		"assert s['start_ns'] == 490000000 and s['end_ns'] == 540000000, s\n"
		"assert 2000 <= s['faults'] <= 2030\n"), 0);
}

static void test_text_storms(void **state)
{
	char buf[8192];
	size_t n;
	FILE *f;

	(void)state;
	assert_int_equal(cli("text"), PFS_EXIT_OK);
	f = fopen(out, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "storms ("));
	assert_non_null(strstr(buf, "1. 490.0-540.0 ms, "));
	assert_non_null(strstr(buf, "pfs_fmt_storm_site"));
}

static void test_folded(void **state)
{
	(void)state;
	assert_int_equal(cli("folded"), PFS_EXIT_OK);
	assert_int_equal(python_check(
		"lines = open(path).read().splitlines()\n"
		"assert len(lines) == 2, lines\n"
		"c = {}\n"
		"for l in lines:\n"
		"  m = re.fullmatch(r'([^;]+(?:;[^;]+)*) (\\d+)', l)\n"
		"  assert m, l\n"
		"  fr = m.group(1).split(';')\n"
		"  assert fr[0] == 'app --storm (pid 77)', fr\n"
		"  c[fr[-2] + fr[-1]] = int(m.group(2))\n"
		"assert c == {'pfs_fmt_storm_site[mmap]': 2000, 'pfs_fmt_quiet_site[malloc]': 500}, c\n"),
			 0);
}

static void test_perfetto(void **state)
{
	(void)state;
	assert_int_equal(cli("perfetto"), PFS_EXIT_OK);
	assert_int_equal(python_check(
		"d = json.load(open(path))\n"
		"ev = d['traceEvents']\n"
		"names = [e for e in ev if e['ph'] == 'M' and e['name'] == 'process_name']\n"
		"assert len(names) == 1 and names[0]['pid'] == 77, names\n"
		"cs = [e for e in ev if e['ph'] == 'C']\n"
		"assert len(cs) >= 100 and all('faults/s' in e['args'] for e in cs)\n"
		"assert all(a['ts'] < b['ts'] for a, b in zip(cs, cs[1:]))\n"
		"assert max(e['args']['faults/s'] for e in cs) >= 35000\n"
		"xs = [e for e in ev if e['ph'] == 'X']\n"
		"assert len(xs) == 1, xs\n"
		"assert re.fullmatch(r'storm: pfs_fmt_storm_site \\(test_an_formats\\.c:\\d+\\)', xs[0]['name']), xs[0]\n"
		"assert abs(xs[0]['ts'] - 490000) < 1 and abs(xs[0]['dur'] - 50000) < 1, xs[0]\n"), 0);
}

static void test_svg(void **state)
{
	(void)state;
	assert_int_equal(cli("svg"), PFS_EXIT_OK);
	assert_int_equal(python_check(
		"ns = '{http://www.w3.org/2000/svg}'\n"
		"root = ET.parse(path).getroot()\n"
		"assert root.tag == ns + 'svg'\n"
		"storms = [r for r in root.iter(ns + 'rect') if r.get('class') == 'storm']\n"
		"assert len(storms) == 1\n"
		"assert len(list(root.iter(ns + 'polyline'))) == 1\n"
		"text = ' '.join(t.text or '' for t in root.iter(ns + 'text'))\n"
		"assert re.search(r'pfs_fmt_storm_site \\(test_an_formats\\.c:\\d+\\) #1', text) and ': 2000' in text, text\n"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_storms),
		cmocka_unit_test(test_text_storms),
		cmocka_unit_test(test_folded),
		cmocka_unit_test(test_perfetto),
		cmocka_unit_test(test_svg),
	};

	return cmocka_run_group_tests_name("analyzer formats", tests, setup, teardown);
}
