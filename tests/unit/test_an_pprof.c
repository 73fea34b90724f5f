/*
 * `pfshim report --format pprof` on a hand-built run of two processes: the
 * output is gunzipped and its protobuf walked by a small decoder in python3
 * (no pprof or protobuf library needed), then checked: the string table, the
 * four sample types and the default one, one sample per site per process
 * with pid, command and kind labels, the storm site's first-touch count and
 * its leaf function.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

LB_SITE_FN(pfs_pp_storm_site)

LB_SITE_FN(pfs_pp_quiet_site)

static char dir[64], out[96];

/* `o`: the -o file; NULL: standard output. */
static int cli(char *o)
{
	char *with_o[] = {"pfshim", "report", "--format", "pprof", "-o", o, dir, NULL};
	char *to_stdout[] = {"pfshim", "report", "--format", "pprof", dir, NULL};

	fflush(NULL);
	return o ? pfs_cli_main(7, with_o) : pfs_cli_main(5, to_stdout);
}

/* pid 77: the storm run of test_an_formats.c; pid 78, its child: one allocation. */
static int setup(void **state)
{
	static const char cmd[] = "app\0--storm\0";
	uint64_t fs[1], fq[1];
	struct lb_self self;
	char path[128];
	struct lb b;

	(void)state;
	if (lb_self_module(&self))
		return -1;
	fs[0] = (uintptr_t)&pfs_pp_storm_site + 1;
	fq[0] = (uintptr_t)&pfs_pp_quiet_site + 1;
	strcpy(dir, "/tmp/pfs-an-pprof-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(out, sizeof(out), "%s.pb.gz", dir);

	snprintf(path, sizeof(path), "%s/app.pfslog", dir);
	if (lb_write_storm_run(path, 77, T0, fs[0], fq[0]))
		return -1;

	lb_init(&b, 78, T0 + 2 * MS);
	lb_proc_start(&b, 78, 77, T0 + 2 * MS, 0, "/usr/bin/app", cmd, sizeof(cmd) - 1);
	lb_module(&b, 1, 1, self.base, self.start, self.end, self.path, self.build_id,
		  (uint8_t)self.build_id_len);
	lb_stack(&b, 2, 1, fq, 1);
	lb_alloc_at(&b, 3, T0 + 3 * MS, 1, PFS_KIND_MMAP, 0x20000000, 1 << 20);
	lb_proc_end_at(&b, 4, T0 + 10 * MS);
	snprintf(path, sizeof(path), "%s/app.78.pfslog", dir);
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

/* A minimal profile.proto reader: varints, length-delimited fields, packed repeats. */
static const char decoder[] =
	"import gzip, sys\n"
	"path = sys.argv[1]\n"
	"def varint(b, i):\n"
	"  v = s = 0\n"
	"  while True:\n"
	"    c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7\n"
	"    if c < 0x80: return v, i\n"
	"def msg(b):\n"
	"  d, i = {}, 0\n"
	"  while i < len(b):\n"
	"    k, i = varint(b, i)\n"
	"    if k & 7 == 0: v, i = varint(b, i)\n"
	"    elif k & 7 == 2:\n"
	"      n, i = varint(b, i); v = b[i:i + n]; i += n\n"
	"    else: raise ValueError('wire type %d' % (k & 7))\n"
	"    d.setdefault(k >> 3, []).append(v)\n"
	"  return d\n"
	"def packed(b):\n"
	"  out, i = [], 0\n"
	"  while i < len(b):\n"
	"    v, i = varint(b, i); out.append(v)\n"
	"  return out\n"
	"def one(d, f): return d.get(f, [0])[0]\n"
	"raw = open(path, 'rb').read()\n"
	"assert raw[:2] == b'\\x1f\\x8b', raw[:2]\n"
	"p = msg(gzip.decompress(raw))\n"
	"st = [s.decode() for s in p[6]]\n"
	"assert st[0] == '', st[:3]\n"
	"types = [(st[one(msg(t), 1)], st[one(msg(t), 2)]) for t in p[1]]\n"
	"assert types == [('first_touch_faults', 'faults'), ('cow_faults', 'faults'),\n"
	"                 ('allocations', 'count'), ('bytes', 'bytes')], types\n"
	"# pprof opens on the last type unless told: told first_touch_faults\n"
	"assert st[one(p, 14)] == 'first_touch_faults', st[one(p, 14)]\n"
	"funcs = {one(f, 1): st[one(f, 2)] for f in map(msg, p[5])}\n"
	"maps = {one(m, 1): (st[one(m, 5)], st[one(m, 6)]) for m in map(msg, p.get(3, []))}\n"
	"locs = {one(l, 1): l for l in map(msg, p[4])}\n"
	"assert len(locs) == len(p[4]) and 0 not in locs and 0 not in funcs\n"
	"samples = []\n"
	"for s in map(msg, p[2]):\n"
	"  ids, vals = packed(s.get(1, [b''])[0]), packed(s.get(2, [b''])[0])\n"
	"  lab = {}\n"
	"  for l in map(msg, s.get(3, [])):\n"
	"    lab[st[one(l, 1)]] = st[one(l, 2)] if 2 in l else one(l, 3)\n"
	"  leaf = locs[ids[0]]\n"
	"  fn = funcs[one(msg(leaf[4][0]), 1)]\n"
	"  samples.append((lab['pid'], lab['kind'], fn, vals, leaf, lab))\n"
	"assert len(samples) == 3, [x[:4] for x in samples]\n"
	"storm = [x for x in samples if x[2] == 'pfs_pp_storm_site']\n"
	"assert len(storm) == 1, [x[:4] for x in samples]\n"
	"pid, kind, fn, vals, leaf, lab = storm[0]\n"
	"assert (pid, kind) == (77, 'mmap') and vals == [2000, 0, 1, 64 << 20], storm[0][:4]\n"
	"assert lab['command'] == 'app --storm', lab\n"
	"assert lab['requested_bytes'] == 64 << 20 and lab['touched_bytes'] == 2000 * 4096, lab\n"
	"assert one(leaf, 3) == int(sys.argv[2], 16), hex(one(leaf, 3))\n"
	"m = maps[one(leaf, 2)]\n"
	"assert m[0] == sys.argv[3] and m[1] == sys.argv[4], m\n"
	"quiet = sorted((x[0], x[1], x[3][0], x[3][2]) for x in samples if x[2] == 'pfs_pp_quiet_site')\n"
	"assert quiet == [(77, 'malloc', 500, 0), (78, 'mmap', 0, 1)], quiet\n"
	"assert len(locs) == 2, locs\n";

static void test_pprof(void **state)
{
	char script[] = "/tmp/pfs-an-pprof-py-XXXXXX", cmd[8192], hex[2 * PFS_BUILD_ID_MAX + 1] = "";
	struct lb_self self;
	int fd, rc;
	FILE *f;

	(void)state;
	assert_int_equal(lb_self_module(&self), 0);
	for (unsigned i = 0; i < self.build_id_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", self.build_id[i]);
	assert_int_equal(cli(out), PFS_EXIT_OK);
	fd = mkstemp(script);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(decoder, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s '%s' %#" PRIx64 " '%s' '%s'", script, out,
		 (uint64_t)(uintptr_t)&pfs_pp_storm_site + 1, self.path, hex);
	rc = system(cmd);
	unlink(script);
	assert_int_equal(rc, 0);
}

/* The same report twice gives the same bytes (gzip mtime 0, no hash order). */
static void test_pprof_stable(void **state)
{
	char other[128], cmd[320];

	(void)state;
	snprintf(other, sizeof(other), "%s.2", out);
	assert_int_equal(cli(out), PFS_EXIT_OK);
	assert_int_equal(cli(other), PFS_EXIT_OK);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", out, other);
	assert_int_equal(system(cmd), 0);
	unlink(other);
}

/* Binary to a terminal: refused, exit 2, nothing written. */
static void test_pprof_tty(void **state)
{
	int master, slave, saved, saved_err, null;

	(void)state;
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) || unlockpt(master)) {
		print_message("no pseudo-terminal here (posix_openpt: %s)\n", strerror(errno));
		skip();
		return;
	}
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(slave >= 0);
	saved = dup(1);
	saved_err = dup(2);
	null = open("/dev/null", O_WRONLY);
	assert_true(saved >= 0 && saved_err >= 0 && null >= 0);
	fflush(NULL);
	dup2(slave, 1);
	dup2(null, 2);	/* the refusal's message */
	assert_int_equal(cli(NULL), PFS_EXIT_USAGE);
	fflush(NULL);
	dup2(saved, 1);
	dup2(saved_err, 2);
	close(saved);
	close(saved_err);
	close(null);
	close(slave);
	close(master);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pprof),
		cmocka_unit_test(test_pprof_stable),
		cmocka_unit_test(test_pprof_tty),
	};

	return cmocka_run_group_tests_name("analyzer pprof", tests, setup, teardown);
}
