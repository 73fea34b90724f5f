/*
 * The advisor's rules on one site (pfs_adv_site) and the text of a rule
 * (pfs_adv_make_rule); see advise.h and docs/advisor.md.  They look only at
 * one site's evidence, so unit tests drive them with made-up numbers.
 */
#include "advise.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "an_common.h"

enum pfs_thp pfs_adv_thp(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");

	if (!f)
		return PFS_THP_UNKNOWN;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	/* "always [madvise] never": the bracketed word is the setting */
	if (strstr(buf, "[always]"))
		return PFS_THP_ALWAYS;
	if (strstr(buf, "[madvise]"))
		return PFS_THP_MADVISE;
	if (strstr(buf, "[never]"))
		return PFS_THP_NEVER;
	return PFS_THP_UNKNOWN;
}

/* N for size>=N, rounded down to a unit the grammar reads (K, M, G): at most n. */
uint64_t pfs_adv_size_cond(uint64_t n)
{
	if (n >= (1ull << 30) && n % (1ull << 30) == 0)
		return n;
	if (n >= (1ull << 20))
		return n & ~((1ull << 20) - 1);
	if (n >= 1024)
		return n & ~1023ull;
	return n;
}

void pfs_adv_fmt_size_cond(char *buf, size_t len, uint64_t n)
{
	if (n >= (1ull << 30) && n % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", n >> 30);
	else if (n >= (1ull << 20) && n % (1ull << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 "K", n >> 10);
	else
		snprintf(buf, len, "%" PRIu64, n);
}

/*
 * The site= glob for a label's function: the name itself, glob characters
 * escaped, and what the grammar cannot carry (blanks, ',' and ';', as in
 * "Pool<int, 4>::grab") matched by '?'; a name longer than a glob may be is
 * cut and ends in '*'.  False when there is no name.
 */
static bool site_glob(const char *fn, char *glob, size_t len)
{
	size_t n = 0;

	if (!fn || !*fn || len < 8)
		return false;
	for (; *fn; fn++) {
		bool esc = strchr("*?[]\\", *fn) != NULL;

		if (n + 1 + esc + 1 >= len) {	/* room for '*' and the NUL */
			glob[n++] = '*';
			break;
		}
		if (esc)
			glob[n++] = '\\';
		glob[n++] = strchr(";, \t\n", *fn) || (unsigned char)*fn < 0x20 ? '?' : *fn;
	}
	glob[n] = '\0';
	return true;
}

/*
 * The module= glob for an object: its base name up to the first '.', then
 * ".*" (the versions and ABI tags after it change between installs:
 * "_multiarray_umath.cpython-311-x86_64-linux-gnu.so" gives
 * "_multiarray_umath.*"); glob characters escaped.
 */
static bool module_glob(const char *mod, char *glob, size_t len)
{
	size_t n = 0;

	if (!mod || !*mod || len < 8)
		return false;
	for (; *mod && *mod != '.'; mod++) {
		bool esc = strchr("*?[]\\", *mod) != NULL;

		if (n + 1 + esc + 3 >= len)
			return false;
		if (esc)
			glob[n++] = '\\';
		glob[n++] = strchr(";, \t\n", *mod) || (unsigned char)*mod < 0x20 ? '?' : *mod;
	}
	if (*mod) {
		glob[n++] = '.';
		glob[n++] = '*';
	}
	glob[n] = '\0';
	return n > 0;
}

void pfs_adv_make_rule(struct pfs_advice *o, uint32_t kind)
{
	const struct pfs_adv_target *t = &o->target;
	char size[32] = "", n[24];

	o->rule[0] = '\0';
	if (!o->actions[0] || (!t->site[0] && !t->module[0]))
		return;
	if (t->min_size) {
		pfs_adv_fmt_size_cond(n, sizeof(n), t->min_size);
		snprintf(size, sizeof(size), ",size>=%s", n);
	}
	snprintf(o->rule, sizeof(o->rule), "%s if %s=%s%s%s%s", o->actions, t->site[0] ? "site" : "module",
		 t->site[0] ? t->site : t->module, size, t->kind ? ",kind=" : "", t->kind ? pfs_kind_name(kind) : "");
}

/* The actions for this site, named as the site's label (or caller's module) and its size condition. */
static void set_rule(struct pfs_advice *o, const struct pfs_adv_site *s, const char *actions)
{
	snprintf(o->actions, sizeof(o->actions), "%s", actions);
	memset(&o->target, 0, sizeof(o->target));
	if (!site_glob(s->function, o->target.site, sizeof(o->target.site)))
		module_glob(s->module, o->target.module, sizeof(o->target.module));
	o->target.min_size = s->size_cond;
	o->target.kind = s->kind == PFS_KIND_MMAP_FILE;
	pfs_adv_make_rule(o, s->kind);
}

static bool soon(const struct pfs_evidence *e)
{
	return e->timed_allocs &&
	       (e->first_touch_lo_ns <= PFS_ADV_SOON_NS || e->first_touch_lo_ns <= e->lifetime_ns / 10);
}

/* Its pages came at a storm's rate: their faults took a noticeable share of the time (storms.h). */
static bool burst(const struct pfs_evidence *e)
{
	double need = e->burst_rate > 0 ? e->burst_rate : PFS_ADV_BURST_RATE;

	/* it tops a storm, or its own touching ran at a storm's rate */
	return e->storm_rate > 0 || e->touch_rate >= need;
}

/* Lives half the process's life or more (median): a share, which a machine's load does not move. */
static bool long_lived(const struct pfs_evidence *e)
{
	return e->tracked_allocs && e->proc_life_ns &&
	       (double)e->lifetime_ns >= PFS_ADV_LONG_SHARE * (double)e->proc_life_ns;
}

/* The kernel gave it huge pages already: fewer than half as many faults as pages (numpy asks itself). */
static bool huge_already(const struct pfs_evidence *e)
{
	return e->tracked_touch_faults && e->tracked_touch_faults * 2 < e->tracked_touched_pages;
}

static bool huge_candidate(const struct pfs_evidence *e, enum pfs_thp thp)
{
	/* under "always" the kernel already uses them; under "never" advice does nothing */
	return thp != PFS_THP_ALWAYS && thp != PFS_THP_NEVER && e->density >= PFS_ADV_HUGE_DENSE &&
	       e->min_size >= PFS_ADV_HUGE_MIN_BYTES && long_lived(e);
}

/*
 * Fast mode found all of an allocation's pages in one scan long after it
 * (a single-threaded program scans at its allocator calls): the speed of the
 * touching is unknown, so the burst rule cannot hold.  Say so, and how to know.
 */
static void coarse_note(struct pfs_advice *o, const struct pfs_evidence *e)
{
	char t[32];
	size_t n = strlen(o->reason);

	if (!e->coarse || e->density < PFS_ADV_DENSE)
		return;
	pfs_evidence_fmt_time(t, sizeof(t), e->spread_hi_ns, e->spread_hi_ns);
	snprintf(o->reason + n, sizeof(o->reason) - n, " (fast mode found all its pages in one scan, "
		 "up to %s after the allocation: a burst and a trickle look alike; record with "
		 "--mode exact to tell, or try --verify -p 'populate if site=...')", t);
}

static void advise_cow(const struct pfs_adv_site *s, struct pfs_advice *o)
{
	const struct pfs_evidence *e = s->ev;
	char b[24];
	bool child = s->child_cow_faults * 2 > s->cow_faults;

	pfs_an_fmt_bytes(b, sizeof(b), (uint64_t)(e->cow_per_fork * e->page_size));
	o->what = PFS_ADVICE_COW;
	snprintf(o->reason, sizeof(o->reason),
		 "copy-on-write after fork: %.0f pages (%s) copied per fork, %s; no policy rule "
		 "changes that, the code must", e->cow_per_fork, b,
		 child ? "mostly written by the child" : "mostly written by the parent while a child shared them");
	if (child)
		snprintf(o->expect, sizeof(o->expect),
			 "allocate this memory in the child after fork (a fresh page costs a first "
			 "touch, not a copy), or MADV_DONTFORK it in the parent when the child does not "
			 "need its contents: up to %.0f copies per fork fewer", e->cow_per_fork);
	else
		snprintf(o->expect, sizeof(o->expect),
			 "MADV_DONTFORK it if the child never reads it; otherwise keep what the parent "
			 "writes apart from what the child reads (layout), or write less while the child "
			 "lives: up to %.0f copies per fork fewer", e->cow_per_fork);
}

static void advise_file(const struct pfs_adv_site *s, struct pfs_advice *o)
{
	const struct pfs_evidence *e = s->ev;
	bool small = e->min_size <= PFS_ADV_WILLNEED_MAX_BYTES;
	char req[24];

	pfs_an_fmt_bytes(req, sizeof(req), e->requested_bytes);
	o->what = PFS_ADVICE_FILE;
	set_rule(o, s, small ? "willneed" : "sequential");
	snprintf(o->reason, sizeof(o->reason),
		 "a file mapping read nearly whole: %.0f%% of %s touched%s", 100.0 * e->density, req,
		 small ? "" : "; sequential assumes it is read in order, which the logs do not show "
			      "(random order: use willneed, or random)");
	snprintf(o->expect, sizeof(o->expect), small
		 ? "the kernel reads the file ahead at mmap time (MADV_WILLNEED): fewer major faults "
		   "when it is not cached; the minor faults that map each page stay (fast mode counts "
		   "those)"
		 : "larger reads ahead and pages dropped behind (MADV_SEQUENTIAL): fewer major faults "
		   "when it is not cached, less page cache held; minor faults stay");
}

/* Sparse: of at least 4 MiB in blocks with pages of their own, less than a quarter touched. */
static bool sparse(const struct pfs_adv_site *s)
{
	const struct pfs_evidence *e = s->ev;

	return e->density >= 0 && e->density < PFS_ADV_SPARSE_SHARE &&
	       e->requested_pages * e->page_size >= PFS_ADV_SPARSE_MIN_BYTES && s->kind != PFS_KIND_REALLOC;
}

static void advise_sparse(const struct pfs_adv_site *s, enum pfs_thp thp, struct pfs_advice *o)
{
	const struct pfs_evidence *e = s->ev;
	char req[24], tou[24], waste[24];

	/* the numbers the share is made of: the blocks with pages of their own */
	pfs_an_fmt_bytes(req, sizeof(req), e->requested_pages * e->page_size);
	pfs_an_fmt_bytes(tou, sizeof(tou), e->tracked_touched_pages * e->page_size);
	pfs_an_fmt_bytes(waste, sizeof(waste), e->waste_if_populated);
	o->what = PFS_ADVICE_SPARSE;
	o->waste_bytes = e->waste_if_populated;
	if (thp == PFS_THP_ALWAYS && e->min_size >= (2u << 20))
		set_rule(o, s, "nohugepage");
	snprintf(o->reason, sizeof(o->reason),
		 "sparse: of %s allocated, %s touched (%.1f%%); do not populate it: that would make "
		 "%s resident that nothing touches", req, tou, 100.0 * e->density, waste);
	snprintf(o->expect, sizeof(o->expect), o->rule[0]
		 ? "no 2 MiB pages for a few touched 4 KiB ones (THP is \"always\" here)"
		 : "nothing to gain: its faults are the pages it uses");
}

static void advise_populate(const struct pfs_adv_site *s, enum pfs_thp thp, struct pfs_advice *o)
{
	const struct pfs_evidence *e = s->ev;
	char req[24], t1[32], rate[24], waste[24];
	bool already = huge_already(e), huge = already || huge_candidate(e, thp);

	pfs_an_fmt_bytes(req, sizeof(req), e->requested_pages * e->page_size);
	pfs_an_fmt_bytes(waste, sizeof(waste), e->waste_if_populated);
	pfs_evidence_fmt_time(t1, sizeof(t1), e->first_touch_lo_ns, e->first_touch_hi_ns);
	pfs_an_fmt_rate(rate, sizeof(rate), e->storm_rate > 0 ? e->storm_rate : e->touch_rate);
	o->what = PFS_ADVICE_POPULATE;
	o->faults_avoided = e->tracked_touch_faults;
	o->waste_bytes = e->waste_if_populated;	/* its cost: resident and never touched */
	/*
	 * hugepage first: the populate that follows then faults in huge pages.
	 * Where the program asks for them itself (after the allocation, which is
	 * when a policy populates), a populate alone would map 4 KiB pages first.
	 */
	set_rule(o, s, huge ? "hugepage,populate" : "populate");
	snprintf(o->reason, sizeof(o->reason),
		 "dense burst right after allocation: %.0f%% of %s touched, first touch %s after "
		 "allocation, %s%s", 100.0 * e->density, req, t1, rate,
		 already ? "; it gets huge pages already (the program asks for them after allocating): "
			   "hugepage first, or populating would map 4 KiB pages"
		 : huge ? "; large and long-lived: huge pages too" : "");
	/* memory mapped without access (a runtime's reserved heap): populated as mprotect opens it */
	bool reserved = e->reserved_allocs && e->reserved_allocs == e->tracked_allocs;
	snprintf(o->expect, sizeof(o->expect),
		 "its %" PRIu64 " first-touch faults (%" PRIu64 " pages) become prefaulted pages %s: near 0 "
		 "first-touch faults left; %s more resident than touched%s", e->tracked_touch_faults,
		 e->tracked_touched_pages,
		 reserved ? "as the program opens its memory (mapped without access, PROT_NONE: one madvise per mprotect "
			    "that opens a part)"
			  : "at allocation (one madvise per allocation)",
		 waste, huge && !already ? "; one fault per 2 MiB where huge pages are granted" : "");
}

static void advise_huge(const struct pfs_adv_site *s, struct pfs_advice *o)
{
	const struct pfs_evidence *e = s->ev;
	char req[24], life[32];

	pfs_an_fmt_bytes(req, sizeof(req), e->min_size);
	pfs_evidence_fmt_time(life, sizeof(life), e->lifetime_ns, e->lifetime_ns);
	o->what = PFS_ADVICE_HUGEPAGE;
	set_rule(o, s, "hugepage");
	snprintf(o->reason, sizeof(o->reason),
		 "large, dense, long-lived: allocations of %s and more, %.0f%% touched, living %s "
		 "(%.0f%% of the process's life), each page its own fault (%" PRIu64 " faults)",
		 req, 100.0 * e->density, life, 100.0 * (double)e->lifetime_ns / (double)e->proc_life_ns,
		 e->tracked_touch_faults);
	snprintf(o->expect, sizeof(o->expect),
		 "2 MiB pages where the kernel can give them: one fault per 2 MiB instead of 512 (--verify "
		 "counts them), fewer TLB entries; %s", e->coarse ? "whether populate would help too, fast "
		 "mode cannot tell (see why)" : "touched gradually, so populating would only move the faults");
	coarse_note(o, e);
}

/* Why nothing applies, in the evidence's words. */
static void advise_fine(const struct pfs_adv_site *s, struct pfs_advice *o)
{
	const struct pfs_evidence *e = s->ev;

	o->what = PFS_ADVICE_FINE;
	if (pfs_kind_is_category(s->kind))
		snprintf(o->reason, sizeof(o->reason), "no allocation: memory accounted by its kind (%s); "
			 "no policy acts on it", pfs_kind_name(s->kind));
	else if (!e->tracked_allocs)
		snprintf(o->reason, sizeof(o->reason), "fine: small blocks on shared heap pages; no "
			 "per-allocation action reaches them (a rule acts on whole pages)");
	else if (e->populated_allocs == e->tracked_allocs)
		snprintf(o->reason, sizeof(o->reason), "fine: the program populates it itself "
			 "(MAP_POPULATE): resident before any touch, nothing left to fault");
	else if (s->kind == PFS_KIND_REALLOC && e->density < PFS_ADV_DENSE)
		snprintf(o->reason, sizeof(o->reason), "fine: grown by realloc, %.0f%% of the requested "
			 "sizes touched anew: each realloc asks again for the memory it moves (mremap "
			 "moves its pages, already present), so it is not sparse", 100.0 * e->density);
	else if (s->kind == PFS_KIND_MMAP_FILE)
		snprintf(o->reason, sizeof(o->reason), "fine: a file mapping read only in part "
			 "(%.0f%%); reading ahead would fetch what is not used", 100.0 * e->density);
	else if (e->density < 0)
		snprintf(o->reason, sizeof(o->reason), "fine: its blocks lie on the shared heap, their "
			 "pages counted with the site's heap pages: how densely each was touched is not known");
	else if (e->density < PFS_ADV_DENSE)
		snprintf(o->reason, sizeof(o->reason), "fine: %.0f%% touched, too little to populate "
			 "and too much to call sparse", 100.0 * e->density);
	else if (huge_already(e))
		snprintf(o->reason, sizeof(o->reason), "fine: the kernel maps it with huge pages already "
			 "(%" PRIu64 " faults for %" PRIu64 " pages)", e->tracked_touch_faults, e->tracked_touched_pages);
	else if (!soon(e))
		snprintf(o->reason, sizeof(o->reason), "fine: first touched long after allocation; "
			 "populating would make it resident early for nothing");
	else if (e->coarse)
		snprintf(o->reason, sizeof(o->reason), "fine as far as fast mode can tell: dense and "
			 "first touched soon, but how fast is unknown");
	else
		snprintf(o->reason, sizeof(o->reason), "fine: touched gradually (%.0f pages/s), "
			 "each fault at its own time; populating would move them, not save them",
			 e->touch_rate);
	snprintf(o->expect, sizeof(o->expect), "no change");
	coarse_note(o, e);
}

void pfs_adv_site(const struct pfs_adv_site *s, enum pfs_thp thp, struct pfs_advice *out)
{
	const struct pfs_evidence *e = s->ev;

	memset(out, 0, sizeof(*out));
	if (pfs_kind_is_category(s->kind))
		advise_fine(s, out);
	else if (e->forks && e->cow_per_fork >= PFS_ADV_COW_PAGES)
		advise_cow(s, out);
	else if (s->kind == PFS_KIND_MMAP_FILE && e->density >= PFS_ADV_DENSE &&
		 e->tracked_touched_pages >= PFS_ADV_MIN_PAGES)
		advise_file(s, out);
	else if (sparse(s))
		advise_sparse(s, thp, out);
	else if (s->kind != PFS_KIND_MMAP_FILE && e->density >= PFS_ADV_DENSE && soon(e) &&
		 burst(e) && e->tracked_touched_pages >= PFS_ADV_MIN_PAGES)
		advise_populate(s, thp, out);
	else if (s->kind != PFS_KIND_MMAP_FILE && huge_candidate(e, thp) && !huge_already(e))
		advise_huge(s, out);
	else
		advise_fine(s, out);
	if (out->actions[0] && !out->rule[0] && s->runtime)
		pfs_an_append(out->expect, sizeof(out->expect), " (no rule: its allocations are made by a runtime "
		              "(%s), which a rule cannot name without acting on every allocation made through it, "
		              "and the object that called the allocator is the runtime's too)", s->runtime);
	else if (out->actions[0] && !out->rule[0])
		pfs_an_append(out->expect, sizeof(out->expect), " (no rule: neither the site's own function nor the "
		              "object that called the allocator has a name a rule can use)");
}
