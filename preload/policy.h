/*
 * Policies (PFSHIM_POLICY, `pfshim record --policy`): rules that say what to
 * do to an allocation at allocation time.  Grammar, from CONTRACT.md:
 *
 *     RULE[;RULE...]      RULE = ACTION[,ACTION...] [if COND[,COND...]]
 *
 * Rules are tried in order; the first whose conditions all hold applies.
 * Everything lives in fixed arrays inside struct pfs_policy: matching runs
 * inside malloc hooks, so this module never allocates.
 */
#ifndef PFS_POLICY_H
#define PFS_POLICY_H

#include <stddef.h>
#include <stdint.h>

#define PFS_POLICY_MAX_RULES 32
#define PFS_POLICY_MAX_GLOBS 4	/* site globs, and separately module globs, per rule */
#define PFS_POLICY_GLOB_MAX 64	/* bytes including the NUL: globs of up to 63 characters */

enum pfs_policy_action {
	PFS_ACT_POPULATE = 1u << 0,	 /* MADV_POPULATE_WRITE, or touch each page */
	PFS_ACT_POPULATE_READ = 1u << 1, /* MADV_POPULATE_READ */
	PFS_ACT_HUGEPAGE = 1u << 2,
	PFS_ACT_NOHUGEPAGE = 1u << 3,
	PFS_ACT_WILLNEED = 1u << 4,
	PFS_ACT_SEQUENTIAL = 1u << 5,
	PFS_ACT_RANDOM = 1u << 6,
	PFS_ACT_MLOCK = 1u << 7,
};
#define PFS_ACT_ALL 0xffu

/* struct pfs_rule.flags */
#define PFS_RULE_HAS_MIN 0x1 /* size>=min_size */
#define PFS_RULE_HAS_MAX 0x2 /* size<max_size */

/*
 * One rule.  Conditions combine with "and", except kinds: an allocation has
 * one kind, so `kind=mmap,kind=mmap-file` means either.  Several site= (or
 * module=) globs must each hold; several size>= keep the largest bound and
 * several size< the smallest, which is what "all hold" means for them.
 */
struct pfs_rule {
	unsigned actions;	/* PFS_ACT_* */
	unsigned flags;		/* PFS_RULE_HAS_* */
	uint64_t min_size;	/* size >= min_size, if PFS_RULE_HAS_MIN */
	uint64_t max_size;	/* size < max_size, if PFS_RULE_HAS_MAX */
	unsigned kinds;		/* bit (1u << enum pfs_kind); 0 = any kind */
	unsigned nsite;
	unsigned nmodule;
	unsigned pos;		/* 1-based position of the rule in the text, for messages */
	unsigned len;		/* length of the rule's text there (for the log) */
	char site[PFS_POLICY_MAX_GLOBS][PFS_POLICY_GLOB_MAX];
	char module[PFS_POLICY_MAX_GLOBS][PFS_POLICY_GLOB_MAX];
};

struct pfs_policy {
	unsigned nrules;
	struct pfs_rule rules[PFS_POLICY_MAX_RULES];
};

/*
 * Parses `text` into `p`.  Returns 0, or -EINVAL with `err` set to
 * "policy: position N: <what was expected>" (N 1-based; the caller prefixes
 * "pfshim: ") and `p` left with no rules, so no policy is applied.  Empty or
 * blank text gives no rules and 0.  Does not allocate.
 */
int pfs_policy_parse(struct pfs_policy *p, const char *text, char *err, size_t errlen);

/*
 * The first rule whose conditions all hold, or NULL.  `site_functions` are
 * the function names of the call-site stack (NULL entries are skipped);
 * `module_path` is the object holding the immediate caller (NULL: module=
 * conditions fail).  Does not allocate: safe inside malloc hooks.
 */
const struct pfs_rule *pfs_policy_match(const struct pfs_policy *p, uint64_t size, int kind,
					const char *const *site_functions, unsigned nsite_functions,
					const char *module_path);

/*
 * The two halves of a rule's conditions: those on the allocation (size,
 * kind), checked per allocation, and those on its call site (site=,
 * module=), which depend on the stack only and can be cached per stack.
 */
int pfs_rule_alloc_holds(const struct pfs_rule *r, uint64_t size, int kind);
/* Whether some rule's site= glob matches `name`: which inlined functions are worth knowing. */
int pfs_policy_wants_site(const struct pfs_policy *p, const char *name);
int pfs_rule_stack_holds(const struct pfs_rule *r, const char *const *site_functions,
			 unsigned nsite_functions, const char *module_path);

/*
 * Writes the action names, comma-separated in bit order ("populate,hugepage"),
 * or "none" for 0.  Returns 0, -EINVAL for unknown bits, -ENOSPC if `buf` is
 * too small (it then holds as much as fits, NUL-terminated).
 */
int pfs_policy_format_actions(unsigned actions, char *buf, size_t len);

#endif
