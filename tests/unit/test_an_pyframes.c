/*
 * Python frames in the analyzer (analyzer/pyframes.c, label.c): a stack
 * flagged PFS_STACK_PYTHON names functions of PYCODE records in place of
 * the interpreter's eval frames; every format shows them where they stood,
 * the label is the script's line (the standard library passed over), a
 * forked child's site is the same site, and bad PYCODE records are refused
 * with their offset.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../analyzer/cli.h"
#include "../../analyzer/model.h"
#include "test_an_logbuild.h"

LB_SITE_FN(pfs_py_extension_alloc)

LB_SITE_FN(pfs_py_interpreter_main)

static char dir[64], out[96];

#define NP1 "/home/u/np1.py"
#define DECODER "/usr/lib/python3.11/json/decoder.py"

static int cli(const char *fmt)
{
	char *argv[] = {"pfshim", "report", "--format", (char *)fmt, "-o", out, dir, NULL};

	fflush(NULL);
	return pfs_cli_main(7, argv);
}

/* One process and its forked child: numpy's stack, a json.loads stack, a stack of the standard library alone. */
static int write_run(void)
{
	static const char cmd[] = "python3\0np1.py\0";
	uint64_t ext = (uintptr_t)&pfs_py_extension_alloc + 1, interp = (uintptr_t)&pfs_py_interpreter_main + 1;
	/* innermost first: the extension's C, the Python frames where the eval frame stood, the interpreter's main */
	uint64_t s1[] = {ext, pfs_pyframe(1, 7), pfs_pyframe(2, 13), pfs_pyframe(3, 17), interp};
	uint64_t s2[] = {ext, pfs_pyframe(4, 353), pfs_pyframe(1, 9), pfs_pyframe(3, 17), interp};
	uint64_t s3[] = {ext, pfs_pyframe(4, 340), interp};
	struct lb_self self;
	struct lb b;
	char path[128];
	int rc;

	if (lb_self_module(&self))
		return -1;
	lb_init(&b, 80, 1000);
	lb_proc_start(&b, 80, 1, 1000, 0, "/usr/bin/python3.11", cmd, sizeof(cmd) - 1);
	lb_module(&b, 1, 1, self.base, self.start, self.end, self.path, self.build_id, (uint8_t)self.build_id_len);
	lb_pycode(&b, 2, 1, 6, NP1, "load_matrix");
	lb_pycode(&b, 3, 2, 12, NP1, "main");
	lb_pycode(&b, 4, 3, 1, NP1, "<module>");
	lb_pycode(&b, 5, 4, 332, DECODER, "JSONDecoder.raw_decode");
	lb_stack_flags(&b, 6, 1, s1, 5, PFS_STACK_PYTHON);
	lb_stack_flags(&b, 7, 2, s2, 5, PFS_STACK_PYTHON);
	lb_stack_flags(&b, 8, 3, s3, 3, PFS_STACK_PYTHON);
	lb_alloc(&b, 9, 1, PFS_KIND_MALLOC, 0x10000000, 128 << 20, 128 << 20);
	lb_touch(&b, 2000, 9, 1, PFS_KIND_MALLOC, 30000, 0);
	lb_alloc(&b, 10, 2, PFS_KIND_MALLOC, 0x20000000, 1 << 20, 1 << 20);
	lb_touch(&b, 2000, 10, 2, PFS_KIND_MALLOC, 200, 0);
	lb_alloc(&b, 11, 3, PFS_KIND_MMAP, 0x30000000, 1 << 20, 1 << 20);
	lb_touch(&b, 2000, 11, 3, PFS_KIND_MMAP, 100, 0);
	lb_fork(&b, 12, 81);
	lb_proc_end(&b, 13, 0, PFS_END_EXIT);
	snprintf(path, sizeof(path), "%s/parent.pfslog", dir);
	rc = lb_write(&b, path, b.len);
	lb_release(&b);
	if (rc)
		return rc;

	/* the child writes what it inherited again (the same ids), then allocates at numpy's line */
	lb_init(&b, 81, 3000);
	lb_proc_start(&b, 81, 80, 3000, 0, "/usr/bin/python3.11", cmd, sizeof(cmd) - 1);
	lb_module(&b, 1, 1, self.base, self.start, self.end, self.path, self.build_id, (uint8_t)self.build_id_len);
	lb_pycode(&b, 2, 1, 6, NP1, "load_matrix");
	lb_pycode(&b, 3, 2, 12, NP1, "main");
	lb_pycode(&b, 4, 3, 1, NP1, "<module>");
	lb_stack_flags(&b, 5, 1, s1, 5, PFS_STACK_PYTHON);
	lb_alloc(&b, 6, 1, PFS_KIND_MALLOC, 0x40000000, 1 << 20, 1 << 20);
	lb_touch(&b, 4000, 6, 1, PFS_KIND_MALLOC, 50, 0);
	lb_proc_end(&b, 7, 0, PFS_END_EXIT);
	snprintf(path, sizeof(path), "%s/child.pfslog", dir);
	rc = lb_write(&b, path, b.len);
	lb_release(&b);
	return rc;
}

static int setup(void **state)
{
	(void)state;
	unsetenv("PFSHIM_RUNTIME_FRAMES");
	strcpy(dir, "/tmp/pfs-an-py-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(out, sizeof(out), "%s.out", dir);
	return write_run();
}

static int teardown(void **state)
{
	(void)state;
	return lb_remove(dir, out);
}

static void test_json_frames_and_label(void **state)
{
	(void)state;
	assert_int_equal(cli("json"), PFS_EXIT_OK);
	assert_int_equal(lb_python_check(
		"d = json.load(open(path))\n"
		"p = [x for x in d['processes'] if x['pid'] == 80][0]\n"
		"top = p['sites'][0]\n"
		"assert top['label'] == {'function': 'load_matrix', 'file': 'np1.py', 'line': 7, 'module': None}, top['label']\n"
		"fr = top['frames']\n"
		"assert fr[0]['function'] == 'pfs_py_extension_alloc' and not fr[0].get('python'), fr[0]\n"
		"py = [(f['function'], f['file'], f['line']) for f in fr if f.get('python')]\n"
		"assert py == [('load_matrix', 'np1.py', 7), ('main', 'np1.py', 13), ('<module>', 'np1.py', 17)], py\n"
		"assert fr[1]['address'] is None and fr[1]['source_path'] == '/home/u/np1.py', fr[1]\n"
		"assert fr[-1]['function'] == 'pfs_py_interpreter_main', fr[-1]\n"
		"# json.loads: the standard library's frame is passed over for the script's line\n"
		"js = [s for s in p['sites'] if s['frames'][1]['function'] == 'JSONDecoder.raw_decode'][0]\n"
		"assert js['label']['function'] == 'load_matrix' and js['label']['line'] == 9, js['label']\n"
		"# nothing but the standard library: its innermost Python frame\n"
		"lib = [s for s in p['sites'] if s['kind'] == 'mmap'][0]\n"
		"assert lib['label']['function'] == 'JSONDecoder.raw_decode' and lib['label']['line'] == 340, lib['label']\n"
		"# the child's site at numpy's line is the same site as its parent's\n"
		"c = [x for x in d['processes'] if x['pid'] == 81][0]\n"
		"assert c['sites'][0]['id'] == top['id'] and c['sites'][0]['label'] == top['label'], c['sites'][0]\n",
		out), 0);
}

static void test_text_and_pprof(void **state)
{
	char *text;

	(void)state;
	assert_int_equal(cli("text"), PFS_EXIT_OK);
	assert_non_null(text = lb_read_text(out));
	assert_non_null(strstr(text, "#1  load_matrix (np1.py:7)"));
	assert_non_null(strstr(text, "main (np1.py:13) [python]"));
	free(text);
	assert_int_equal(cli("pprof"), PFS_EXIT_OK);
	assert_int_equal(lb_python_check(
		"import gzip\n"
		"b = gzip.decompress(open(path, 'rb').read())\n"
		"for s in (b'load_matrix', b'/home/u/np1.py', b'JSONDecoder.raw_decode', b'pfs_py_extension_alloc'):\n"
		"    assert s in b, s\n",
		out), 0);
	assert_int_equal(cli("folded"), PFS_EXIT_OK);
	assert_int_equal(lb_python_check(
		"t = open(path).read()\n"
		"assert '<module>;main;load_matrix;pfs_py_extension_alloc' in t.replace('[malloc]', ''), t\n",
		out), 0);
}

/* Refused records: each said with its offset; a record that makes no sense is passed, a cut one ends its block. */
static void test_bad_pycode(void **state)
{
	uint64_t s1[] = {pfs_pyframe(1, 7), pfs_pyframe(9, 3)};
	struct pfs_rec_pycode r;
	struct pfs_run run;
	struct lb b;
	size_t bad_len;
	const struct pfs_stack *st;

	(void)state;
	lb_init(&b, 90, 0);
	lb_proc_start(&b, 90, 1, 0, 0, "/usr/bin/python3.11", "python3", 8);
	lb_pycode(&b, 1, 0, 1, NP1, "zero");			/* id 0 */
	lb_pycode(&b, 2, 1, 6, NP1, "load_matrix");
	lb_pycode(&b, 3, 1, 6, NP1, "other");			/* id 1 again, another name */
	lb_stack_flags(&b, 4, 1, s1, 2, PFS_STACK_PYTHON);
	lb_alloc(&b, 5, 1, PFS_KIND_MALLOC, 0x1000, 1 << 20, 1 << 20);
	lb_next_block(&b);
	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_PYCODE;
	r.id = 2;
	r.file_len = 4;
	r.name_len = 4000;					/* runs past the record */
	bad_len = lb_put(&b, &r, sizeof(r), "x.py", 4);
	lb_pycode(&b, 6, 3, 1, NP1, "lost");			/* after it in its block: not read */
	pfs_model_init(&run, NULL);
	assert_int_equal(pfs_model_load_buffer(&run, b.buf, b.len, "bad.pfslog"), 0);
	assert_int_equal(pfs_model_finish(&run), 0);
	assert_int_equal(run.nprocs, 1);
	assert_int_equal(run.procs[0]->bad_records, 3);
	assert_true(run.errors > 0);
	char want[64];
	snprintf(want, sizeof(want), "offset %zu", bad_len);
	bool said = false;
	for (size_t i = 0; i < run.warnings.n; i++)
		said |= strstr(run.warnings.msgs[i], want) && strstr(run.warnings.msgs[i], "PYCODE name");
	assert_true(said);
	/* the first definition stands; the function never recorded has no name */
	assert_string_equal(pfs_model_pycode(run.procs[0], 1)->name, "load_matrix");
	assert_null(pfs_model_pycode(run.procs[0], 9));
	assert_null(pfs_model_pycode(run.procs[0], 3));
	st = pfs_model_stack(run.procs[0], 1, NULL);
	assert_non_null(st);
	assert_true(st->python);
	pfs_model_free(&run);
	lb_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_frames_and_label),
		cmocka_unit_test(test_text_and_pprof),
		cmocka_unit_test(test_bad_pycode),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
