/*
 * The advisor's rules and `pfshim advise DIR`; see advise.h and
 * docs/advisor.md.  The rules (pfs_adv_site) look only at one site's
 * evidence, so unit tests drive them with made-up numbers.  Then, over the
 * whole report (pfs_adv_build), each rule is narrowed until it acts on no
 * site that was advised otherwise, and the rules are ordered so that none
 * is tried after another that would take its allocations.
 */
#include "advise.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "label.h"

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
static uint64_t size_cond(uint64_t n)
{
	if (n >= (1ull << 30) && n % (1ull << 30) == 0)
		return n;
	if (n >= (1ull << 20))
		return n & ~((1ull << 20) - 1);
	if (n >= 1024)
		return n & ~1023ull;
	return n;
}

static void fmt_size_cond(char *buf, size_t len, uint64_t n)
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

static void append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
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
		fmt_size_cond(n, sizeof(n), t->min_size);
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
	snprintf(o->expect, sizeof(o->expect),
		 "its %" PRIu64 " first-touch faults (%" PRIu64 " pages) become prefaulted pages at "
		 "allocation (one madvise per allocation): near 0 first-touch faults left; %s more resident "
		 "than touched%s", e->tracked_touch_faults, e->tracked_touched_pages, waste,
		 huge && !already ? "; one fault per 2 MiB where huge pages are granted" : "");
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
		append(out->expect, sizeof(out->expect), " (no rule: its allocations are made by a runtime "
		       "(%s), which a rule cannot name without acting on every allocation made through it, "
		       "and the object that called the allocator is the runtime's too)", s->runtime);
	else if (out->actions[0] && !out->rule[0])
		append(out->expect, sizeof(out->expect), " (no rule: neither the site's own function nor the "
		       "object that called the allocator has a name a rule can use)");
}

/* ---- a report's sites --------------------------------------------------- */

/*
 * Rules name the site's label, the user's own code (label.h): never an
 * allocator's or a runtime's function, which every allocation of that
 * runtime shares.  NULL when the label is none of the user's.
 */
static const char *user_function(const struct pfs_rsite *rs)
{
	const struct pfs_rframe *l = pfs_report_label(rs);

	return l && l->function && !rs->category.function && pfs_label_role(l) == PFS_FRAME_USER
		       ? l->function : NULL;
}

/* The label when it is an allocator's or a runtime's (no rule names it): its function or object. */
static const char *runtime_label(const struct pfs_rsite *rs)
{
	const struct pfs_rframe *l = pfs_report_label(rs);

	if (!l || rs->category.function || pfs_label_role(l) == PFS_FRAME_USER)
		return NULL;
	return l->function ? l->function : l->module;
}

/* The object that called the allocator (module= matches it), when it is the user's: its base name. */
static const char *caller_module(const struct pfs_rproc *rp, const struct pfs_rsite *rs)
{
	const struct pfs_proc *owner = NULL;
	const struct pfs_stack *st = pfs_model_stack(rp->proc, rs->site->key.stack, &owner);
	const struct pfs_module *m;
	const char *base;

	if (!st || !st->nframes || !owner)
		return NULL;
	/* as the shim looks it up (preload/policy_apply.c): the call instruction, before the return address */
	m = pfs_model_module_at(owner, st->frames[0] - 1, st->seq);
	if (!m || !m->path)
		return NULL;
	base = strrchr(m->path, '/');
	return base ? base + 1 : m->path;
}

static bool module_is_users(const char *module)
{
	struct pfs_rframe f = {.module = module};

	return module && pfs_label_role(&f) == PFS_FRAME_USER;
}

bool pfs_adv_reaches(const struct pfs_adv_target *t, uint32_t target_kind, const struct pfs_rsite *rs,
		     const struct pfs_evidence *ev, const char *module)
{
	bool named = false;

	/* policies act on allocations with records of their own (preload/track.c), at allocation time */
	if (!ev || !ev->tracked_allocs || pfs_kind_is_category(rs->site->key.kind))
		return false;
	if (t->min_size && ev->max_size < t->min_size)
		return false;
	if (t->kind && rs->site->key.kind != target_kind)
		return false;
	if (t->site[0]) {
		for (size_t k = 0; k < rs->nframes && !named; k++)
			named = (rs->frames[k].function && !fnmatch(t->site, rs->frames[k].function, 0)) ||
				(rs->frames[k].symbol && !fnmatch(t->site, rs->frames[k].symbol, 0));
		if (!named)
			return false;
	}
	if (t->module[0] && (!module || fnmatch(t->module, module, 0)))
		return false;
	return t->site[0] || t->module[0];
}

static void merge(struct pfs_evidence *to, const struct pfs_evidence *from)
{
	to->tracked_allocs += from->tracked_allocs;
	to->requested_bytes += from->requested_bytes;
	to->requested_pages += from->requested_pages;
	to->touched_pages += from->touched_pages;
	to->touched_bytes += from->touched_bytes;
	to->touch_faults += from->touch_faults;
	to->tracked_touched_pages += from->tracked_touched_pages;
	to->tracked_touch_faults += from->tracked_touch_faults;
	to->populated_allocs += from->populated_allocs;
	to->shared_allocs += from->shared_allocs;
	to->cow_pages += from->cow_pages;
	to->cow_faults += from->cow_faults;
	to->prefaulted_pages += from->prefaulted_pages;
	if (from->min_size && (!to->min_size || from->min_size < to->min_size))
		to->min_size = from->min_size;
	if (from->max_size > to->max_size)
		to->max_size = from->max_size;
	if (from->storm_rate > to->storm_rate) {
		to->storm_rate = from->storm_rate;
		to->storm_faults = from->storm_faults;
	}
}

static uint64_t item_faults(const struct pfs_adv_item *it)
{
	return it->in.first_touch_faults + it->in.cow_faults;
}

static int cmp_item(const void *a, const void *b)
{
	const struct pfs_adv_item *x = a, *y = b;

	if (item_faults(x) != item_faults(y))
		return item_faults(x) > item_faults(y) ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int collect(const struct pfs_report *rep, struct pfs_adv_list *l, size_t *cap)
{
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; rp->evidence && j < rp->nsites; j++) {
			const struct pfs_site *s = rp->sites[j].site;
			struct pfs_adv_item *it = NULL;

			for (size_t k = 0; k < l->n && !it; k++)
				if (l->items[k].id == rp->sites[j].id)
					it = &l->items[k];
			if (!it) {
				if (pfs_an_reserve((void **)&l->items, cap, l->n + 1, sizeof(*l->items)))
					return -ENOMEM;
				it = &l->items[l->n++];
				memset(it, 0, sizeof(*it));
				it->id = rp->sites[j].id;
				it->rp = rp;
				it->index = j;
				it->ev = rp->evidence[j];
				it->in.first_touch_faults = s->first_touch_faults;
				it->in.cow_faults = s->cow_faults;
			} else {
				const struct pfs_site *best = it->rp->sites[it->index].site;
				struct pfs_evidence sum = it->ev;

				/* the counts add up; the timings are those of the process that touched it first-hand */
				if (s->first_touch_faults > best->first_touch_faults ||
				    (s->first_touch_faults == best->first_touch_faults &&
				     s->cow_faults > best->cow_faults)) {
					it->rp = rp;
					it->index = j;
					sum = rp->evidence[j];
					merge(&sum, &it->ev);
				} else {
					merge(&sum, &rp->evidence[j]);
				}
				it->ev = sum;
				it->in.first_touch_faults += s->first_touch_faults;
				it->in.cow_faults += s->cow_faults;
			}
			if (rp->proc->fork_parent)
				it->in.child_cow_faults += s->cow_faults;
		}
	}
	return 0;
}

/* The actions advised for report-wide site `id`, rule or not ("" none: fine, quiet, sparse, a code change). */
static const char *actions_of(const struct pfs_adv_list *l, uint32_t id)
{
	for (size_t k = 0; k < l->n; k++)
		if (l->items[k].id == id)
			return l->items[k].adv.actions;
	return "";
}

/*
 * The first site of the report, other than `it`'s own, that a rule with
 * target t would act on and `stop` accepts (its process in *where); NULL none.
 */
static const struct pfs_rsite *first_reached(const struct pfs_report *rep, const struct pfs_adv_item *it,
					     const struct pfs_adv_target *t, const struct pfs_adv_list *l,
					     bool (*stop)(const struct pfs_adv_list *, const struct pfs_adv_item *,
							  const struct pfs_rsite *),
					     const struct pfs_rproc **where)
{
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; rp->evidence && j < rp->nsites; j++) {
			const struct pfs_rsite *rs = &rp->sites[j];

			if (rs->id == it->id ||
			    !pfs_adv_reaches(t, it->in.kind, rs, &rp->evidence[j], caller_module(rp, rs)))
				continue;
			if (stop(l, it, rs)) {
				*where = rp;
				return rs;
			}
		}
	}
	return NULL;
}

/* A site the rule would reach that was advised something else (or nothing). */
static bool advised_otherwise(const struct pfs_adv_list *l, const struct pfs_adv_item *it, const struct pfs_rsite *rs)
{
	return strcmp(actions_of(l, rs->id), it->adv.actions) != 0;
}

/* Allocations of their own that the target names, besides the item's: in how many sites, of how many. */
static void reach_count(const struct pfs_report *rep, const struct pfs_adv_item *it, size_t *named, size_t *all)
{
	struct pfs_adv_target t = it->adv.target;

	t.min_size = 0;
	t.kind = false;
	*named = *all = 0;
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; rp->evidence && j < rp->nsites; j++) {
			const struct pfs_rsite *rs = &rp->sites[j];

			if (!rp->evidence[j].tracked_allocs || pfs_kind_is_category(rs->site->key.kind))
				continue;
			(*all)++;
			*named += pfs_adv_reaches(&t, it->in.kind, rs, &rp->evidence[j], caller_module(rp, rs));
		}
	}
}

/*
 * Narrows item k's rule until it acts on no other site of the run that was
 * advised otherwise (or not at all): the name alone, then size>= the site's
 * smallest allocation, then its kind too.  When nothing narrows it enough
 * there is no rule, and the expectation names the site it would have
 * reached.  A name in most stacks (main, a dispatch loop) makes a rule of
 * sizes and kinds: the reason says so, and what keeps it to this site.
 */
static void narrow(const struct pfs_report *rep, struct pfs_adv_list *l, size_t k)
{
	struct pfs_adv_item *it = &l->items[k];
	struct pfs_advice *a = &it->adv;
	const struct pfs_rproc *where = NULL;
	const struct pfs_rsite *bad;
	char before[256], name[256], n[24];
	size_t named, all;

	if (!a->rule[0])
		return;
	snprintf(before, sizeof(before), "%s", a->rule);
	for (int step = 0;; step++) {
		bad = first_reached(rep, it, &a->target, l, advised_otherwise, &where);
		if (!bad || step == 2)
			break;
		if (step == 0 && it->ev.min_size)
			a->target.min_size = size_cond(it->ev.min_size);
		else
			a->target.kind = true;
		pfs_adv_make_rule(a, it->in.kind);
	}
	if (bad) {
		const char *other = actions_of(l, bad->id);

		pfs_report_site_label(bad, name, sizeof(name));
		a->rule[0] = '\0';
		append(a->expect, sizeof(a->expect), " (no rule: '%s' would also act on site #%" PRIu32
		       " %s (pid %" PRIu64 "), %s%s, however narrowed by size and kind)", before, bad->id, name,
		       where->proc->pid, other[0] ? "advised " : "which needs nothing", other);
		return;
	}
	reach_count(rep, it, &named, &all);
	if (named > 2 && named * 2 >= all && (a->target.min_size || a->target.kind)) {
		char cond[64] = "";

		if (a->target.min_size) {
			fmt_size_cond(n, sizeof(n), a->target.min_size);
			snprintf(cond, sizeof(cond), "size>=%s", n);
		}
		if (a->target.kind)
			append(cond, sizeof(cond), "%skind=%s", cond[0] ? "," : "", pfs_kind_name(it->in.kind));
		append(a->reason, sizeof(a->reason), "; %s=%s is in %zu of the %zu stacks with allocations of "
		       "their own%s: %s keeps it off the sites advised otherwise in this run",
		       a->target.site[0] ? "site" : "module", a->target.site[0] ? a->target.site : a->target.module,
		       named, all, named == all ? " (all)" : "", cond);
	}
}

/*
 * The rules in the order the shim must try them: a rule that would also
 * act on another rule's site comes after that rule, so that no rule takes
 * the allocations of one listed later (shadowing).  Where two rules would
 * each act on the other's site (their sites are advised the same, narrow()
 * saw to it) the one with more faults stays and covers the other's.
 * Fills each item's rule_index and the policy line.
 */
struct rule_ent {
	const char *rule;	/* one item's; the text shared by every item with the same rule */
	size_t first;		/* its first item (most faults) */
	int placed;		/* its index in the policy, -1 not yet */
};

static bool rule_reaches_item(const struct pfs_report *rep, const struct pfs_adv_item *by,
			      const struct pfs_adv_item *it)
{
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; rp->evidence && j < rp->nsites; j++)
			if (rp->sites[j].id == it->id &&
			    pfs_adv_reaches(&by->adv.target, by->in.kind, &rp->sites[j], &rp->evidence[j],
					    caller_module(rp, &rp->sites[j])))
				return true;
	}
	return false;
}

static bool rule_placed(const struct rule_ent *r, size_t nr, const char *rule)
{
	for (size_t q = 0; q < nr; q++)
		if (!strcmp(r[q].rule, rule))
			return r[q].placed >= 0;
	return true;
}

static int order_rules(const struct pfs_report *rep, struct pfs_adv_list *l)
{
	struct rule_ent *r = calloc(l->n + 1, sizeof(*r));
	size_t nr = 0, placed = 0, plen = 0;

	if (!r)
		return -ENOMEM;
	for (size_t k = 0; k < l->n; k++) {
		size_t i;

		l->items[k].rule_index = -1;
		if (!l->items[k].adv.rule[0])
			continue;
		for (i = 0; i < nr && strcmp(r[i].rule, l->items[k].adv.rule); i++)
			;
		if (i == nr)
			r[nr++] = (struct rule_ent){.rule = l->items[k].adv.rule, .first = k, .placed = -1};
	}
	while (placed < nr) {
		size_t pick = nr;

		/* the first rule (by faults) that reaches no site of a rule not placed yet */
		for (size_t i = 0; i < nr && pick == nr; i++) {
			bool waits = false;

			if (r[i].placed >= 0)
				continue;
			for (size_t k = 0; k < l->n && !waits; k++) {
				const char *own = l->items[k].adv.rule;

				waits = own[0] && strcmp(own, r[i].rule) && !rule_placed(r, nr, own) &&
					rule_reaches_item(rep, &l->items[r[i].first], &l->items[k]);
			}
			if (!waits)
				pick = i;
		}
		if (pick == nr) {
			/* a cycle: the first left stays, and covers the sites of the rules it reaches */
			for (pick = 0; r[pick].placed >= 0; pick++)
				;
			for (size_t k = 0; k < l->n; k++) {
				struct pfs_adv_item *it = &l->items[k];

				if (it->adv.rule[0] && strcmp(it->adv.rule, r[pick].rule) &&
				    rule_reaches_item(rep, &l->items[r[pick].first], it)) {
					append(it->adv.expect, sizeof(it->adv.expect), " (its own rule '%s' is left "
					       "out: the rule of site #%" PRIu32 ", '%s', acts on it first, the same way)",
					       it->adv.rule, l->items[r[pick].first].id, r[pick].rule);
					for (size_t q = 0; q < nr; q++)
						if (r[q].placed < 0 && q != pick && !strcmp(r[q].rule, it->adv.rule)) {
							r[q].placed = INT32_MAX;	/* dropped */
							placed++;
						}
					snprintf(it->adv.rule, sizeof(it->adv.rule), "%s", r[pick].rule);
				}
			}
		}
		r[pick].placed = (int)placed++;
	}
	/* the policy line, in that order */
	for (size_t i = 0; i < nr; i++)
		plen += strlen(r[i].rule) + 2;
	l->policy = calloc(plen + 1, 1);
	if (!l->policy) {
		free(r);
		return -ENOMEM;
	}
	for (int idx = 0; idx < (int)nr; idx++)
		for (size_t i = 0; i < nr; i++)
			if (r[i].placed == idx) {
				if (l->policy[0])
					strcat(l->policy, "; ");
				strcat(l->policy, r[i].rule);
				for (size_t k = 0; k < l->n; k++)
					if (!strcmp(l->items[k].adv.rule, r[i].rule))
						l->items[k].rule_index = idx;
			}
	free(r);
	return 0;
}

int pfs_adv_build(const struct pfs_report *rep, enum pfs_thp thp, struct pfs_adv_list *out)
{
	uint64_t forks = 0, proc_touched = 0;
	size_t cap = 0, keep = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_proc *p = rep->procs[i].proc;

		for (size_t c = 0; c < p->nchildren; c++)
			forks += p->children[c].how == PFS_FORK || p->children[c].how == PFS_UFORK ||
				 p->children[c].how == PFS_CLONE;
		for (size_t j = 0; j < rep->procs[i].nsites; j++)
			if (rep->procs[i].sites[j].site->key.kind != PFS_KIND_SELF)
				proc_touched += rep->procs[i].sites[j].site->first_touch_pages;
	}
	rc = collect(rep, out, &cap);
	if (rc)
		goto fail;
	for (size_t k = 0; k < out->n; k++) {
		struct pfs_adv_item *it = &out->items[k];
		struct pfs_evidence *e = &it->ev;
		const struct pfs_rsite *rs = &it->rp->sites[it->index];
		const char *module = caller_module(it->rp, rs);

		pfs_evidence_density(e);
		e->resident_share = proc_touched ? (double)e->touched_pages / (double)proc_touched : 0;
		e->forks = forks;
		e->cow_per_fork = forks ? (double)e->cow_pages / (double)forks : 0;
		it->in.ev = e;
		it->in.kind = rs->site->key.kind;
		it->in.function = user_function(rs);
		it->in.runtime = runtime_label(rs);
		it->in.module = module_is_users(module) ? module : NULL;
		/* a site matters by its faults, or by a large allocation it barely touches */
		if (item_faults(it) < PFS_ADV_MIN_PAGES &&
		    !(e->density >= 0 && e->density < PFS_ADV_SPARSE_SHARE &&
		      e->requested_pages * e->page_size >= PFS_ADV_SPARSE_MIN_BYTES)) {
			out->quiet++;
			continue;
		}
		pfs_adv_site(&it->in, thp, &it->adv);
		out->items[keep++] = *it;
	}
	out->n = keep;
	if (out->n)
		qsort(out->items, out->n, sizeof(*out->items), cmp_item);
	for (size_t k = 0; k < out->n; k++) {	/* the copies moved: point at their own evidence */
		struct pfs_adv_item *it = &out->items[k];

		it->in.ev = &it->ev;
		if (pfs_report_site_key(&it->rp->sites[it->index], it->rp->proc, &it->key)) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	for (size_t k = 0; k < out->n; k++)
		narrow(rep, out, k);
	rc = order_rules(rep, out);
	if (rc)
		goto fail;
	return 0;
fail:
	pfs_adv_free(out);
	return rc;
}

void pfs_adv_free(struct pfs_adv_list *l)
{
	for (size_t k = 0; k < l->n; k++)
		free(l->items[k].key);
	free(l->items);
	free(l->policy);
	memset(l, 0, sizeof(*l));
}

/* ---- output ------------------------------------------------------------- */

static const char *const what_names[] = {
	[PFS_ADVICE_FINE] = "fine", [PFS_ADVICE_POPULATE] = "populate", [PFS_ADVICE_HUGEPAGE] = "hugepage",
	[PFS_ADVICE_FILE] = "file-readahead", [PFS_ADVICE_SPARSE] = "sparse", [PFS_ADVICE_COW] = "fork",
};

/* Names from logs and objects go to a terminal: control bytes become '?'. */
static void put_clean(FILE *f, const char *s)
{
	for (; s && *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

int pfs_adv_print_text(const struct pfs_report *rep, const struct pfs_adv_list *l, FILE *out,
		       const char *source)
{
	fputs("# pfshim advise: ", out);
	put_clean(out, source ? source : "?");
	fprintf(out, "\n# mode %s, %zu process%s; rules and thresholds: docs/advisor.md\n#\n",
		rep->mode, rep->nprocs, rep->nprocs == 1 ? "" : "es");
	for (size_t k = 0; k < l->n; k++) {
		const struct pfs_adv_item *it = &l->items[k];
		char name[256], line[640];

		pfs_report_site_label(&it->rp->sites[it->index], name, sizeof(name));
		pfs_evidence_summary(line, sizeof(line), &it->ev);
		fprintf(out, "site #%" PRIu32 " ", it->id);
		put_clean(out, name);
		fprintf(out, " (%s, pid %" PRIu64 "): %s\n", pfs_kind_name(it->in.kind),
			it->rp->proc->pid, what_names[it->adv.what]);
		if (it->adv.rule[0]) {
			fputs("    rule:     ", out);
			put_clean(out, it->adv.rule);
			fputc('\n', out);
		}
		fputs("    why:      ", out);
		put_clean(out, it->adv.reason);
		fprintf(out, "\n    evidence: %s; %" PRIu64 " first-touch, %" PRIu64
			" copy-on-write faults\n    expect:   ", line, it->in.first_touch_faults,
			it->in.cow_faults);
		put_clean(out, it->adv.expect);
		fputs("\n\n", out);
	}
	if (!l->n)
		fputs("no site has enough faults to matter: nothing to advise\n\n", out);
	if (l->quiet)
		fprintf(out, "%zu more site%s: fine (fewer than %d faults, nothing large left untouched)\n\n",
			l->quiet, l->quiet == 1 ? "" : "s", PFS_ADV_MIN_PAGES);
	if (l->policy[0]) {
		fputs("PFSHIM_POLICY='", out);
		put_clean(out, l->policy);
		fputs("'\n", out);
	} else {
		fputs("# no policy rule to recommend\n", out);
	}
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}

int pfs_adv_print_json(const struct pfs_report *rep, const struct pfs_adv_list *l, FILE *out,
		       const char *source)
{
	struct pfs_json w;

	pfs_json_init(&w, out, 2);
	pfs_json_begin_object(&w);
	pfs_json_kv_uint(&w, "version", 1);
	pfs_json_kv_string(&w, "source", source);
	pfs_json_kv_string(&w, "mode", rep->mode);
	pfs_json_key(&w, "advice");
	pfs_json_begin_array(&w);
	for (size_t k = 0; k < l->n; k++) {
		const struct pfs_adv_item *it = &l->items[k];

		pfs_json_begin_object(&w);
		pfs_json_kv_uint(&w, "site", it->id);
		pfs_json_kv_string(&w, "function", it->in.function);
		pfs_json_kv_string(&w, "kind", pfs_kind_name(it->in.kind));
		pfs_json_kv_uint(&w, "pid", it->rp->proc->pid);
		pfs_json_kv_string(&w, "advice", what_names[it->adv.what]);
		pfs_json_kv_string(&w, "rule", it->adv.rule[0] ? it->adv.rule : NULL);
		/* its place in the policy: rules are tried in order, none before one it would shadow */
		pfs_json_key(&w, "rule_index");
		if (it->rule_index >= 0)
			pfs_json_int(&w, it->rule_index);
		else
			pfs_json_null(&w);
		pfs_json_kv_string(&w, "reason", it->adv.reason);
		pfs_json_kv_string(&w, "expected", it->adv.expect);
		pfs_json_kv_uint(&w, "waste_if_populated_bytes", it->adv.waste_bytes);
		pfs_json_kv_uint(&w, "faults_avoided", it->adv.faults_avoided);
		pfs_json_kv_uint(&w, "first_touch_faults", it->in.first_touch_faults);
		pfs_json_kv_uint(&w, "cow_faults", it->in.cow_faults);
		pfs_json_key(&w, "evidence");
		pfs_evidence_json(&w, &it->ev);
		pfs_json_end_object(&w);
	}
	pfs_json_end_array(&w);
	pfs_json_kv_uint(&w, "quiet_sites", l->quiet);
	pfs_json_kv_string(&w, "policy", l->policy);
	pfs_json_end_object(&w);
	return pfs_json_finish(&w) ? -EIO : 0;
}
