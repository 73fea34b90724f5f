/* The analyzer's JSON writer: escaping, structure, misuse, validity per python3. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* by path: -Ipreload comes first and the shim may have headers of the same name */
#include "../../analyzer/json.h"

/* What the writer produced, as a NUL-terminated string the test frees. */
struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static void cap_open(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

static char *cap_close(struct capture *c)
{
	fclose(c->f);
	return c->buf;
}

static char *escaped(const char *s, size_t len)
{
	struct capture c;

	cap_open(&c);
	pfs_json_write_escaped(c.f, s, len);
	return cap_close(&c);
}

static void test_escape_specials(void **state)
{
	char *out;

	(void)state;
	out = escaped("a\"b\\c", 5);
	assert_string_equal(out, "\"a\\\"b\\\\c\"");
	free(out);
	out = escaped("\n\t\r\b\f", 5);
	assert_string_equal(out, "\"\\n\\t\\r\\b\\f\"");
	free(out);
	/* other control bytes, an embedded NUL; DEL needs no escape in JSON */
	out = escaped("\x01x\x1f\0y\x7f", 6);
	assert_string_equal(out, "\"\\u0001x\\u001f\\u0000y\x7f\"");
	free(out);
	out = escaped("", 0);
	assert_string_equal(out, "\"\"");
	free(out);
}

static void test_escape_utf8(void **state)
{
	char *out;

	(void)state;
	/* valid UTF-8 passes through: é, €, U+1F600 */
	out = escaped("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
	assert_string_equal(out, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	free(out);
	/* a stray byte, a lone continuation byte */
	out = escaped("a\xffz\x80", 4);
	assert_string_equal(out, "\"a\\ufffdz\\ufffd\"");
	free(out);
	/* overlong '/', a UTF-16 surrogate, above U+10FFFF, a cut sequence */
	out = escaped("\xc0\xaf", 2);
	assert_string_equal(out, "\"\\ufffd\\ufffd\"");
	free(out);
	out = escaped("\xed\xa0\x80", 3);
	assert_string_equal(out, "\"\\ufffd\\ufffd\\ufffd\"");
	free(out);
	out = escaped("\xf4\x90\x80\x80", 4);
	assert_string_equal(out, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	free(out);
	out = escaped("x\xe2\x82", 3);
	assert_string_equal(out, "\"x\\ufffd\\ufffd\"");
	free(out);
}

static void test_structure_compact(void **state)
{
	struct pfs_json w;
	struct capture c;
	char *out;

	(void)state;
	cap_open(&c);
	pfs_json_init(&w, c.f, 0);
	pfs_json_begin_object(&w);
	pfs_json_key(&w, "a");
	pfs_json_uint(&w, 18446744073709551615ull);
	pfs_json_key(&w, "b");
	pfs_json_begin_array(&w);
	pfs_json_int(&w, -5);
	pfs_json_null(&w);
	pfs_json_bool(&w, true);
	pfs_json_string(&w, NULL);
	pfs_json_begin_object(&w);
	pfs_json_end_object(&w);
	pfs_json_begin_array(&w);
	pfs_json_end_array(&w);
	pfs_json_double(&w, 0.0 / 0.0);
	pfs_json_end_array(&w);
	pfs_json_key(&w, "k\"ey");
	pfs_json_string(&w, "v");
	pfs_json_end_object(&w);
	assert_int_equal(pfs_json_finish(&w), 0);
	out = cap_close(&c);
	assert_string_equal(out, "{\"a\":18446744073709551615,\"b\":[-5,null,true,null,{},[],null],"
			    "\"k\\\"ey\":\"v\"}\n");
	free(out);
}

static void test_structure_indented(void **state)
{
	struct pfs_json w;
	struct capture c;
	char *out;

	(void)state;
	cap_open(&c);
	pfs_json_init(&w, c.f, 2);
	pfs_json_begin_object(&w);
	pfs_json_key(&w, "x");
	pfs_json_begin_array(&w);
	pfs_json_uint(&w, 1);
	pfs_json_uint(&w, 2);
	pfs_json_end_array(&w);
	pfs_json_key(&w, "e");
	pfs_json_begin_array(&w);
	pfs_json_end_array(&w);
	pfs_json_end_object(&w);
	assert_int_equal(pfs_json_finish(&w), 0);
	out = cap_close(&c);
	assert_string_equal(out, "{\n  \"x\": [\n    1,\n    2\n  ],\n  \"e\": []\n}\n");
	free(out);
}

static void test_misuse_is_reported(void **state)
{
	struct pfs_json w;
	struct capture c;

	(void)state;
	/* a value without a key inside an object */
	cap_open(&c);
	pfs_json_init(&w, c.f, 0);
	pfs_json_begin_object(&w);
	pfs_json_uint(&w, 1);
	pfs_json_end_object(&w);
	assert_int_equal(pfs_json_finish(&w), -EINVAL);
	free(cap_close(&c));
	/* unbalanced */
	cap_open(&c);
	pfs_json_init(&w, c.f, 0);
	pfs_json_begin_array(&w);
	assert_int_equal(pfs_json_finish(&w), -EINVAL);
	free(cap_close(&c));
	/* mismatched end, a dangling key, two documents */
	cap_open(&c);
	pfs_json_init(&w, c.f, 0);
	pfs_json_begin_array(&w);
	pfs_json_end_object(&w);
	assert_int_equal(pfs_json_finish(&w), -EINVAL);
	free(cap_close(&c));
	cap_open(&c);
	pfs_json_init(&w, c.f, 0);
	pfs_json_begin_object(&w);
	pfs_json_key(&w, "k");
	pfs_json_end_object(&w);
	assert_int_equal(pfs_json_finish(&w), -EINVAL);
	free(cap_close(&c));
	cap_open(&c);
	pfs_json_init(&w, c.f, 0);
	pfs_json_uint(&w, 1);
	pfs_json_uint(&w, 2);
	assert_int_equal(pfs_json_finish(&w), -EINVAL);
	free(cap_close(&c));
	/* deeper than the writer tracks */
	cap_open(&c);
	pfs_json_init(&w, c.f, 0);
	for (int i = 0; i < PFS_JSON_MAX_DEPTH + 1; i++)
		pfs_json_begin_array(&w);
	assert_int_equal(pfs_json_finish(&w), -EINVAL);
	free(cap_close(&c));
}

/*
 * Random byte strings (every byte value, broken UTF-8 included) must give a
 * document python's strict parser accepts, and printable ASCII must come
 * back unchanged.
 */
static void test_random_strings_parse(void **state)
{
	char path[] = "/tmp/pfs-an-json-XXXXXX", cmd[256];
	struct pfs_json w;
	unsigned seed = 12345;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	pfs_json_init(&w, f, 1);
	pfs_json_begin_array(&w);
	pfs_json_string(&w, "plain ASCII ~!@#$%^&*()_+{}|:<>?");
	for (int i = 0; i < 300; i++) {
		char s[64];
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof(s));

		for (size_t j = 0; j < n; j++)
			s[j] = (char)(rand_r(&seed) & 0xff);
		pfs_json_string_len(&w, s, n);
	}
	pfs_json_end_array(&w);
	assert_int_equal(pfs_json_finish(&w), 0);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
		 "assert len(d)==301 and d[0]==\"plain ASCII ~!@#$%%^&*()_+{}|:<>?\"' %s", path);
	assert_int_equal(system(cmd), 0);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_specials),
		cmocka_unit_test(test_escape_utf8),
		cmocka_unit_test(test_structure_compact),
		cmocka_unit_test(test_structure_indented),
		cmocka_unit_test(test_misuse_is_reported),
		cmocka_unit_test(test_random_strings_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
