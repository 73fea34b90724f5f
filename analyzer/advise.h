/*
 * The advisor: per allocation site, a policy rule (shared/CONTRACT.md's
 * grammar) or a code change, with its reason, its evidence (evidence.h)
 * and the expected effect; `pfshim advise DIR` prints them, `advise
 * --verify` (advise_run.c) measures them.  The rules and why their
 * thresholds are what they are: docs/advisor.md.
 */
#ifndef PFSHIM_ADVISE_H
#define PFSHIM_ADVISE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "evidence.h"
#include "report.h"

/* A site matters from this many first-touch or copy-on-write pages (1 MiB of 4 KiB pages). */
#define PFS_ADV_MIN_PAGES 256
/* populate: at least this share of the requested pages touched ... */
#define PFS_ADV_DENSE 0.5
/* ... the first touch at most this long after the allocation (or 10% of its life) ... */
#define PFS_ADV_SOON_NS 10000000ull
/*
 * ... and the pages coming at a storm's rate (storms.h: their faults took 10%
 * of the time or more, at this machine's cost), or topping a storm; this
 * rate (pages/s) where the storm rule's threshold is not known.
 */
#define PFS_ADV_BURST_RATE 10000.0
/* sparse: below this share touched, of at least PFS_ADV_SPARSE_MIN_BYTES requested */
#define PFS_ADV_SPARSE_SHARE 0.25
#define PFS_ADV_SPARSE_MIN_BYTES (4ull << 20)
/*
 * hugepage: allocations of at least 8 MiB (four 2 MiB pages), 80% touched,
 * living half the process's life or more (median): a share, not a time, so
 * that a machine's load, which stretches both, does not change the advice
 */
#define PFS_ADV_HUGE_MIN_BYTES (8ull << 20)
#define PFS_ADV_HUGE_DENSE 0.8
#define PFS_ADV_LONG_SHARE 0.5
/* file mappings: willneed up to this size, sequential above (willneed reads it all now) */
#define PFS_ADV_WILLNEED_MAX_BYTES (256ull << 20)
/* copy-on-write: this many pages copied per fork (1 MiB) */
#define PFS_ADV_COW_PAGES 256.0

enum pfs_adv_what {
	PFS_ADVICE_FINE = 0,	/* nothing would help */
	PFS_ADVICE_POPULATE,	/* populate (maybe with hugepage) */
	PFS_ADVICE_HUGEPAGE,
	PFS_ADVICE_FILE,		/* willneed or sequential */
	PFS_ADVICE_SPARSE,		/* not populate: name the waste; nohugepage under THP "always" */
	PFS_ADVICE_COW,		/* a code change after fork */
};

/* What the machine's transparent huge pages do (/sys/kernel/mm/transparent_hugepage/enabled). */
enum pfs_thp { PFS_THP_UNKNOWN, PFS_THP_ALWAYS, PFS_THP_MADVISE, PFS_THP_NEVER };

/* A site= glob's longest (preload/policy.h's PFS_POLICY_GLOB_MAX, with its NUL). */
#define PFS_ADV_GLOB_MAX 64

/*
 * How a rule names a site: site= its label's function (the user's code,
 * never an allocator's or a runtime's: label.h), else module= the object
 * that called the allocator; narrowed by size>= and kind= where the name
 * alone would reach other sites (advise.c).
 */
struct pfs_adv_target {
	char site[PFS_ADV_GLOB_MAX];	/* a glob; "" none */
	char module[PFS_ADV_GLOB_MAX];	/* a glob; "" none */
	uint64_t min_size;		/* size>=; 0 none */
	bool kind;			/* kind= the site's (always for file mappings) */
};

/* One site as the rules see it: its evidence, kind, and how a rule can name it. */
struct pfs_adv_site {
	const struct pfs_evidence *ev;
	uint32_t kind;			/* enum pfs_kind */
	const char *function;		/* its label's (label.h); NULL: none, or not the user's code */
	const char *module;		/* the object that called the allocator (module= matches it); NULL */
	const char *runtime;		/* the label, when it is an allocator's or a runtime's; NULL */
	uint64_t size_cond;		/* size>= the rule adds; 0 none */
	uint64_t first_touch_faults, cow_faults;
	uint64_t child_cow_faults;	/* of cow_faults, those in forked children */
};

struct pfs_advice {
	enum pfs_adv_what what;
	char actions[64];	/* the rule's actions ("populate", "hugepage,populate", ...); "" none */
	struct pfs_adv_target target;
	char rule[256];		/* for PFSHIM_POLICY; "" when none */
	char reason[640];
	char expect[512];
	uint64_t waste_bytes;	/* populating would make this resident untouched */
	uint64_t faults_avoided;	/* first-touch faults the rule should remove */
};

enum pfs_thp pfs_adv_thp(void);

/* The rules, on one site (advise_rules.c, no I/O): fills *out; PFS_ADVICE_FINE when no rule applies. */
void pfs_adv_site(const struct pfs_adv_site *s, enum pfs_thp thp, struct pfs_advice *out);
/* out->rule from out->actions and out->target ("" when the target names nothing). */
void pfs_adv_make_rule(struct pfs_advice *out, uint32_t kind);
/* N for size>=N, rounded down to a unit the grammar reads (K, M, G): at most n. */
uint64_t pfs_adv_size_cond(uint64_t n);
/* size>='s N as the grammar writes it: "512K", "8M", "1G", "1000". */
void pfs_adv_fmt_size_cond(char *buf, size_t len, uint64_t n);

/*
 * Whether a rule of `target` would act on an allocation of this site: a
 * frame's function (or raw symbol) matches its site= glob, the object that
 * called the allocator matches its module=, and an allocation of the site
 * is large enough to get a record of its own (the shim applies policies to
 * those) and to meet size>=.  The analyzer's reading of the shim's matcher
 * (preload/policy.c), over a report's sites.
 */
bool pfs_adv_reaches(const struct pfs_adv_target *t, uint32_t target_kind, const struct pfs_rsite *rs,
		     const struct pfs_evidence *ev, const char *module);

/* One advised site of a report: the process and site it came from. */
struct pfs_adv_item {
	uint32_t id;			/* report-wide site id */
	const struct pfs_rproc *rp;	/* the process with its most faults */
	size_t index;			/* into rp->sites */
	struct pfs_evidence ev;		/* merged over the processes that have it */
	struct pfs_adv_site in;
	struct pfs_advice adv;
	int rule_index;			/* its rule's place in the policy (0 first); -1 none */
	char *key;			/* its identity across runs (pfs_report_site_key) */
};

struct pfs_adv_list {
	struct pfs_adv_item *items;	/* sites that matter, most faults first */
	size_t n;
	size_t quiet;			/* sites below every threshold */
	char *policy;			/* every rule joined by "; ", in the order they must be tried ("" none) */
};

/* Advice for every site of `rep` (advise.c); 0 or -ENOMEM. */
int pfs_adv_build(const struct pfs_report *rep, enum pfs_thp thp, struct pfs_adv_list *out);
void pfs_adv_free(struct pfs_adv_list *l);

/* `pfshim advise` output, text or JSON (advise_print.c); 0 or -EIO. */
int pfs_adv_print_text(const struct pfs_report *rep, const struct pfs_adv_list *l, FILE *out,
		       const char *source);
int pfs_adv_print_json(const struct pfs_report *rep, const struct pfs_adv_list *l, FILE *out,
		       const char *source);

#endif
