/* The policy grammar: parsing, first-match rules, and errors that name their position. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pfshim/log_format.h"
#include "policy.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* Static like the shim's: the struct is ~18 KiB. */
static struct pfs_policy pol;
static char err[512];

static int parse(const char *text)
{
	memset(err, 0, sizeof(err));
	return pfs_policy_parse(&pol, text, err, sizeof(err));
}

static const struct pfs_rule *match1(uint64_t size, int kind, const char *fn, const char *module)
{
	const char *fns[1] = {fn};
	return pfs_policy_match(&pol, size, kind, fns, fn ? 1 : 0, module);
}

/* Index of the matching rule, -1 for none. */
static int rule_no(const struct pfs_rule *r)
{
	return r ? (int)(r - pol.rules) : -1;
}

static void test_contract_example(void **state)
{
	(void)state;
	assert_int_equal(parse("populate if site=load_*,size>=1M; hugepage if size>=64M"), 0);
	assert_string_equal(err, "");
	assert_int_equal(pol.nrules, 2);
	assert_int_equal(pol.rules[0].actions, PFS_ACT_POPULATE);
	assert_int_equal(pol.rules[0].nsite, 1);
	assert_string_equal(pol.rules[0].site[0], "load_*");
	assert_int_equal(pol.rules[0].min_size, MiB);
	assert_int_equal(pol.rules[1].actions, PFS_ACT_HUGEPAGE);
	assert_int_equal(pol.rules[1].min_size, 64 * MiB);
	assert_int_equal(pol.rules[0].pos, 1);
	assert_int_equal(pol.rules[1].pos, 35);
	/* each rule's text, for the log: without the ';' and the blanks around it */
	assert_int_equal(pol.rules[0].len, strlen("populate if site=load_*,size>=1M"));
	assert_int_equal(pol.rules[1].len, strlen("hugepage if size>=64M"));

	const struct pfs_rule *r = match1(2 * MiB, PFS_KIND_MALLOC, "load_table", NULL);
	assert_int_equal(rule_no(r), 0);
	assert_int_equal(r->actions, PFS_ACT_POPULATE);
	assert_int_equal(rule_no(match1(100 * MiB, PFS_KIND_MALLOC, "other", NULL)), 1);
	assert_null(match1(2 * MiB, PFS_KIND_MALLOC, "other", NULL));
	/* First match wins: a 100 MiB load_table is rule 1's, not rule 2's. */
	assert_int_equal(rule_no(match1(100 * MiB, PFS_KIND_MALLOC, "load_table", NULL)), 0);
	/* Too small for rule 1 even from load_*. */
	assert_null(match1(MiB - 1, PFS_KIND_MALLOC, "load_table", NULL));
}

static void test_site_any_frame(void **state)
{
	(void)state;
	assert_int_equal(parse("willneed if site=load_*"), 0);
	const char *stack[] = {"memcpy", NULL, "load_index", "main"};
	assert_non_null(pfs_policy_match(&pol, 1, PFS_KIND_MALLOC, stack, 4, NULL));
	assert_null(pfs_policy_match(&pol, 1, PFS_KIND_MALLOC, stack, 2, NULL));
	/* No stack at all: a site= condition cannot hold. */
	assert_null(pfs_policy_match(&pol, 1, PFS_KIND_MALLOC, NULL, 0, NULL));
	/* fnmatch semantics, not substring: "reload_x" does not match "load_*". */
	assert_null(match1(1, PFS_KIND_MALLOC, "reload_x", NULL));

	/* Two site globs: each must be matched by some frame ("all conditions hold"). */
	assert_int_equal(parse("random if site=load_*, site=main"), 0);
	assert_non_null(pfs_policy_match(&pol, 1, PFS_KIND_MALLOC, stack, 4, NULL));
	assert_null(pfs_policy_match(&pol, 1, PFS_KIND_MALLOC, stack, 3, NULL));
}

static void test_size_boundaries(void **state)
{
	(void)state;
	assert_int_equal(parse("populate if size<4K; mlock if size>=1G"), 0);
	assert_int_equal(rule_no(match1(4 * KiB - 1, PFS_KIND_MALLOC, NULL, NULL)), 0);
	assert_null(match1(4 * KiB, PFS_KIND_MALLOC, NULL, NULL)); /* exactly N: not < N */
	assert_null(match1(GiB - 1, PFS_KIND_MALLOC, NULL, NULL));
	assert_int_equal(rule_no(match1(GiB, PFS_KIND_MALLOC, NULL, NULL)), 1); /* exactly N: >= N */

	/* A range, and plain numbers without a suffix. */
	assert_int_equal(parse("sequential if size>=100,size<200"), 0);
	assert_null(match1(99, PFS_KIND_MALLOC, NULL, NULL));
	assert_non_null(match1(100, PFS_KIND_MALLOC, NULL, NULL));
	assert_non_null(match1(199, PFS_KIND_MALLOC, NULL, NULL));
	assert_null(match1(200, PFS_KIND_MALLOC, NULL, NULL));

	/* Two lower bounds: both must hold, so the larger counts. */
	assert_int_equal(parse("populate if size>=2M,size>=1M"), 0);
	assert_null(match1(MiB, PFS_KIND_MALLOC, NULL, NULL));
	assert_non_null(match1(2 * MiB, PFS_KIND_MALLOC, NULL, NULL));
}

static void test_kinds(void **state)
{
	(void)state;
	assert_int_equal(parse("willneed if kind=mmap-file"), 0);
	assert_int_equal(pol.rules[0].kinds, 1u << PFS_KIND_MMAP_FILE);
	for (int k = 0; k < PFS_KIND_MAX + 2; k++) {
		if (k == PFS_KIND_MMAP_FILE)
			assert_non_null(match1(1, k, NULL, NULL));
		else
			assert_null(match1(1, k, NULL, NULL));
	}
	assert_null(match1(1, -1, NULL, NULL));

	/* Two kinds in one rule: either. */
	assert_int_equal(parse("hugepage if kind=mmap,kind=aligned"), 0);
	for (int k = 1; k < PFS_KIND_MAX; k++) {
		if (k == PFS_KIND_MMAP || k == PFS_KIND_ALIGNED)
			assert_non_null(match1(1, k, NULL, NULL));
		else
			assert_null(match1(1, k, NULL, NULL));
	}

	/* Every name pfs_kind_name gives parses, and to its own bit. */
	for (unsigned k = 1; k < PFS_KIND_MAX; k++) {
		char text[64];
		snprintf(text, sizeof(text), "populate if kind=%s", pfs_kind_name(k));
		assert_int_equal(parse(text), 0);
		assert_int_equal(pol.rules[0].kinds, 1u << k);
	}
}

static void test_module_basename(void **state)
{
	(void)state;
	assert_int_equal(parse("mlock if module=libfoo*.so*"), 0);
	assert_non_null(match1(1, PFS_KIND_MALLOC, NULL, "/usr/lib/x86_64-linux-gnu/libfoo.so.1"));
	assert_non_null(match1(1, PFS_KIND_MALLOC, NULL, "libfoo-2.so"));
	assert_null(match1(1, PFS_KIND_MALLOC, NULL, "/opt/libfoo/libbar.so"));
	assert_null(match1(1, PFS_KIND_MALLOC, NULL, NULL));
	/* The glob sees the basename only, so a directory in the glob never matches. */
	assert_int_equal(parse("mlock if module=/usr/*"), 0);
	assert_null(match1(1, PFS_KIND_MALLOC, NULL, "/usr/lib/libc.so.6"));
	assert_int_equal(parse("mlock if module=prog"), 0);
	assert_non_null(match1(1, PFS_KIND_MALLOC, NULL, "/home/u/bin/prog"));
}

static void test_several_actions_and_no_conditions(void **state)
{
	(void)state;
	assert_int_equal(parse("populate,hugepage,mlock"), 0);
	assert_int_equal(pol.nrules, 1);
	assert_int_equal(pol.rules[0].actions, PFS_ACT_POPULATE | PFS_ACT_HUGEPAGE | PFS_ACT_MLOCK);
	/* No conditions: matches anything, even with no stack and no module. */
	assert_non_null(pfs_policy_match(&pol, 0, 0, NULL, 0, NULL));
	assert_non_null(match1(UINT64_MAX, PFS_KIND_BRK, "x", "/y"));

	assert_int_equal(parse("populate_read,nohugepage,willneed,sequential,random"), 0);
	assert_int_equal(pol.rules[0].actions, PFS_ACT_POPULATE_READ | PFS_ACT_NOHUGEPAGE |
						       PFS_ACT_WILLNEED | PFS_ACT_SEQUENTIAL |
						       PFS_ACT_RANDOM);
}

struct bad {
	const char *text;
	const char *msg;
};

static void test_error_positions(void **state)
{
	(void)state;
	static const struct bad cases[] = {
		{"populate; prefault if size>=1M",
		 "policy: position 11: unknown action 'prefault' (expected populate, populate_read, "
		 "hugepage, nohugepage, willneed, sequential, random or mlock)"},
		{"populate if colour=red",
		 "policy: position 13: unknown condition 'colour' (expected size, site, module or kind)"},
		{"populate if size>=12X", "policy: position 19: bad size '12X' (expected N, NK, NM or NG)"},
		{"populate if size >= ", "policy: position 21: 'size>=' needs a number (N, NK, NM or NG)"},
		{"populate if size 1M", "policy: position 18: 'size' needs >= or <"},
		{"populate if size<=1M", "policy: position 17: 'size' needs >= or <"},
		{"populate if site=", "policy: position 18: 'site' needs a glob after '='"},
		{"populate if site=,size>=1M", "policy: position 18: 'site' needs a glob after '='"},
		{"populate if module load*", "policy: position 20: 'module' needs ="},
		{"populate if kind=heap",
		 "policy: position 18: unknown kind 'heap' (expected malloc, calloc, realloc, aligned, "
		 "mmap, mmap-file, shared or brk)"},
		{"populate if size>=1M,",
		 "policy: position 22: expected a condition (size, site, module or kind), found end of "
		 "text"},
		{"populate if size>=1M,; mlock",
		 "policy: position 22: expected a condition (size, site, module or kind), found ';'"},
		{"populate, if size>=1M", "policy: position 11: expected an action after ',', found 'if'"},
		{"populate,",
		 "policy: position 10: expected an action (populate, populate_read, hugepage, "
		 "nohugepage, willneed, sequential, random or mlock), found end of text"},
		{"populate if", "policy: position 12: 'if' needs a condition"},
		{"hugepage; populate if ; mlock", "policy: position 23: 'if' needs a condition"},
		{"populate;;hugepage", "policy: position 10: empty rule"},
		{"populate;", "policy: position 10: empty rule"},
		{" ; populate", "policy: position 2: empty rule"},
		{"populate when size>=1M",
		 "policy: position 10: expected ',', 'if', ';' or end of text after an action"},
		{"populate if size>=1M site=x",
		 "policy: position 22: expected ',', ';' or end of text after a condition"},
		{"*populate",
		 "policy: position 1: expected an action (populate, populate_read, hugepage, "
		 "nohugepage, willneed, sequential, random or mlock), found '*'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* A good policy first: a failed parse must leave none of it behind. */
		assert_int_equal(parse("mlock"), 0);
		assert_int_equal(parse(cases[i].text), -EINVAL);
		if (strcmp(err, cases[i].msg) != 0)
			fail_msg("input \"%s\":\n  got  \"%s\"\n  want \"%s\"", cases[i].text, err,
				 cases[i].msg);
		assert_int_equal(pol.nrules, 0);
		assert_null(pfs_policy_match(&pol, 1, PFS_KIND_MALLOC, NULL, 0, NULL));
	}
}

static void test_glob_limits(void **state)
{
	(void)state;
	assert_int_equal(parse("populate if site=a,site=b,site=c,site=d,module=e,module=f,"
			       "module=g,module=h"),
			 0);
	assert_int_equal(pol.rules[0].nsite, 4);
	assert_int_equal(pol.rules[0].nmodule, 4);

	assert_int_equal(parse("populate if site=a,site=b,site=c,site=d,site=e"), -EINVAL);
	assert_string_equal(err, "policy: position 41: more than 4 site globs in one rule");

	char text[256], glob[80];
	memset(glob, 'g', 63);
	glob[63] = 0;
	snprintf(text, sizeof(text), "populate if site=%s", glob);
	assert_int_equal(parse(text), 0);
	assert_string_equal(pol.rules[0].site[0], glob);
	snprintf(text, sizeof(text), "populate if module=%sg", glob);
	assert_int_equal(parse(text), -EINVAL);
	assert_string_equal(err, "policy: position 20: module glob longer than 63 characters");
}

static void test_whitespace(void **state)
{
	(void)state;
	assert_int_equal(parse("  populate ,\thugepage  if  size >= 1M ,  kind = malloc ,site= f* ;"
			       "\n mlock  "),
			 0);
	assert_int_equal(pol.nrules, 2);
	assert_int_equal(pol.rules[0].actions, PFS_ACT_POPULATE | PFS_ACT_HUGEPAGE);
	assert_int_equal(pol.rules[0].flags, PFS_RULE_HAS_MIN);
	assert_int_equal(pol.rules[0].min_size, MiB);
	assert_int_equal(pol.rules[0].kinds, 1u << PFS_KIND_MALLOC);
	assert_string_equal(pol.rules[0].site[0], "f*");
	assert_int_equal(pol.rules[1].actions, PFS_ACT_MLOCK);
	assert_int_equal(pol.rules[1].pos, 69);
	/* Both spellings give the same rule. */
	assert_int_equal(parse("populate if size>=1M"), 0);
	uint64_t tight = pol.rules[0].min_size;
	assert_int_equal(parse("populate if size >= 1M"), 0);
	assert_int_equal(pol.rules[0].min_size, tight);
	assert_int_equal(parse("populate if size < 1m"), 0);
	assert_int_equal(pol.rules[0].max_size, MiB);
}

static void test_empty(void **state)
{
	(void)state;
	assert_int_equal(parse("mlock"), 0);
	assert_int_equal(parse(""), 0);
	assert_int_equal(pol.nrules, 0);
	assert_string_equal(err, "");
	assert_null(pfs_policy_match(&pol, 1, PFS_KIND_MALLOC, NULL, 0, NULL));
	assert_int_equal(parse(" \t\n "), 0);
	assert_int_equal(pol.nrules, 0);
	assert_int_equal(pfs_policy_parse(&pol, NULL, err, sizeof(err)), 0);
	assert_int_equal(pol.nrules, 0);
}

static void test_rule_count(void **state)
{
	(void)state;
	char text[1024] = "";
	size_t len32 = 0;
	for (int i = 0; i < 33; i++) {
		if (i == 32)
			len32 = strlen(text);
		strcat(text, i ? ";mlock" : "mlock");
	}
	/* Rule 33 starts after the ';' that follows rule 32. */
	size_t pos33 = len32 + 2;
	/* 32 rules fit. */
	char text32[1024];
	memcpy(text32, text, len32);
	text32[len32] = 0;
	assert_int_equal(parse(text32), 0);
	assert_int_equal(pol.nrules, 32);

	assert_int_equal(parse(text), -EINVAL);
	char want[128];
	snprintf(want, sizeof(want), "policy: position %zu: more than 32 rules", pos33);
	assert_string_equal(err, want);
	assert_int_equal(pos33, 32 * 6 + 1);
	assert_int_equal(pol.nrules, 0);
}

static void test_format_actions(void **state)
{
	(void)state;
	char buf[256];
	assert_int_equal(pfs_policy_format_actions(PFS_ACT_POPULATE | PFS_ACT_HUGEPAGE, buf,
						   sizeof(buf)),
			 0);
	assert_string_equal(buf, "populate,hugepage");
	assert_int_equal(pfs_policy_format_actions(0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "none");
	assert_int_equal(pfs_policy_format_actions(1u << 8, buf, sizeof(buf)), -EINVAL);

	/* Every combination formats to a text that parses back to itself. */
	for (unsigned a = 1; a <= PFS_ACT_ALL; a++) {
		assert_int_equal(pfs_policy_format_actions(a, buf, sizeof(buf)), 0);
		char text[300];
		snprintf(text, sizeof(text), "%s if size>=1", buf);
		assert_int_equal(parse(text), 0);
		assert_int_equal(pol.rules[0].actions, a);
	}
	assert_int_equal(pfs_policy_format_actions(PFS_ACT_ALL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "populate,populate_read,hugepage,nohugepage,willneed,sequential,"
				 "random,mlock");

	/* Too small: truncated at a name boundary, still terminated. */
	char small[12];
	memset(small, 'x', sizeof(small));
	assert_int_equal(pfs_policy_format_actions(PFS_ACT_POPULATE | PFS_ACT_MLOCK, small,
						   sizeof(small)),
			 -ENOSPC);
	assert_string_equal(small, "populate");
}

static void test_small_err_buffer(void **state)
{
	(void)state;
	char tiny[16];
	memset(tiny, 'x', sizeof(tiny));
	assert_int_equal(pfs_policy_parse(&pol, "bogus", tiny, sizeof(tiny)), -EINVAL);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	assert_memory_equal(tiny, "policy: positio", 15);
	/* No buffer at all is allowed too. */
	assert_int_equal(pfs_policy_parse(&pol, "bogus", NULL, 0), -EINVAL);
}

/* Which inlined functions the shim keeps: those some rule's site= names. */
static void test_wants_site(void **state)
{
	(void)state;
	assert_int_equal(pfs_policy_parse(&pol, "populate if site=load_*; hugepage if size>=1M, site='x'; "
						"mlock if site=app::Loader::*", NULL, 0), 0);
	assert_true(pfs_policy_wants_site(&pol, "load_records"));
	assert_true(pfs_policy_wants_site(&pol, "app::Loader::load"));
	assert_false(pfs_policy_wants_site(&pol, "main"));
	assert_int_equal(pfs_policy_parse(&pol, "populate if size>=1M", NULL, 0), 0);
	assert_false(pfs_policy_wants_site(&pol, "load_records"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_contract_example),
		cmocka_unit_test(test_site_any_frame),
		cmocka_unit_test(test_size_boundaries),
		cmocka_unit_test(test_kinds),
		cmocka_unit_test(test_module_basename),
		cmocka_unit_test(test_several_actions_and_no_conditions),
		cmocka_unit_test(test_error_positions),
		cmocka_unit_test(test_glob_limits),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_rule_count),
		cmocka_unit_test(test_format_actions),
		cmocka_unit_test(test_small_err_buffer),
		cmocka_unit_test(test_wants_site),
	};
	return cmocka_run_group_tests_name("shim_policy", tests, NULL, NULL);
}
