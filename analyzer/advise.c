/*
 * The advisor's rules and `pfshim advise DIR`; see advise.h and
 * docs/advisor.md.  The rules (pfs_adv_site) look only at one site's
 * evidence, so unit tests drive them with made-up numbers.
 */
#include "advise.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

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

/* N for size>=N: rounded down to a unit the grammar reads (K, M, G). */
static void fmt_size_cond(char *buf, size_t len, uint64_t n)
{
	if (n >= (1ull << 30) && n % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", n >> 30);
	else if (n >= (1ull << 20))
		snprintf(buf, len, "%" PRIu64 "M", n >> 20);
	else if (n >= 1024)
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

/* "ACTIONS if site=GLOB[,size>=N][,kind=K]", or "" when the site has no name. */
static void make_rule(char *buf, size_t len, const struct pfs_adv_site *s, const char *actions)
{
	char size[32] = "", glob[PFS_ADV_GLOB_MAX];

	if (!site_glob(s->function, glob, sizeof(glob))) {
		buf[0] = '\0';
		return;
	}
	if (s->name_shared && s->ev->min_size) {
		char n[24];

		fmt_size_cond(n, sizeof(n), s->ev->min_size);
		snprintf(size, sizeof(size), ",size>=%s", n);
	}
	snprintf(buf, len, "%s if site=%s%s%s", actions, glob, size,
		 s->kind == PFS_KIND_MMAP_FILE ? ",kind=mmap-file" : "");
}

static bool soon(const struct pfs_evidence *e)
{
	return e->timed_allocs &&
	       (e->first_touch_lo_ns <= PFS_ADV_SOON_NS || e->first_touch_lo_ns <= e->lifetime_ns / 10);
}

static bool burst(const struct pfs_evidence *e)
{
	/* a storm of the run's own measure is not enough: slow steady touching can be one */
	return (e->storm_rate > e->touch_rate ? e->storm_rate : e->touch_rate) >= PFS_ADV_BURST_RATE;
}

static bool huge_candidate(const struct pfs_evidence *e, enum pfs_thp thp)
{
	/* under "always" the kernel already uses them; under "never" advice does nothing */
	return thp != PFS_THP_ALWAYS && thp != PFS_THP_NEVER && e->density >= PFS_ADV_HUGE_DENSE &&
	       e->min_size >= PFS_ADV_HUGE_MIN_BYTES && e->lifetime_ns >= PFS_ADV_LONG_NS;
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
	make_rule(o->rule, sizeof(o->rule), s, small ? "willneed" : "sequential");
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

static void advise_sparse(const struct pfs_adv_site *s, enum pfs_thp thp, struct pfs_advice *o)
{
	const struct pfs_evidence *e = s->ev;
	char req[24], tou[24], waste[24];

	pfs_an_fmt_bytes(req, sizeof(req), e->requested_bytes);
	pfs_an_fmt_bytes(tou, sizeof(tou), e->tracked_touched_pages * e->page_size);
	pfs_an_fmt_bytes(waste, sizeof(waste), e->waste_if_populated);
	o->what = PFS_ADVICE_SPARSE;
	o->waste_bytes = e->waste_if_populated;
	if (thp == PFS_THP_ALWAYS && e->min_size >= (2u << 20))
		make_rule(o->rule, sizeof(o->rule), s, "nohugepage");
	snprintf(o->reason, sizeof(o->reason),
		 "sparse: allocated %s, touched %s (%.1f%%); do not populate it: that would make "
		 "%s resident that nothing touches", req, tou, 100.0 * e->density, waste);
	snprintf(o->expect, sizeof(o->expect), o->rule[0]
		 ? "no 2 MiB pages for a few touched 4 KiB ones (THP is \"always\" here)"
		 : "nothing to gain: its faults are the pages it uses");
}

static void advise_populate(const struct pfs_adv_site *s, enum pfs_thp thp, struct pfs_advice *o)
{
	const struct pfs_evidence *e = s->ev;
	char req[24], t1[32], rate[24], waste[24];
	bool huge = huge_candidate(e, thp);

	pfs_an_fmt_bytes(req, sizeof(req), e->requested_bytes);
	pfs_an_fmt_bytes(waste, sizeof(waste), e->waste_if_populated);
	pfs_evidence_fmt_time(t1, sizeof(t1), e->first_touch_lo_ns, e->first_touch_hi_ns);
	pfs_an_fmt_rate(rate, sizeof(rate), e->storm_rate > 0 ? e->storm_rate : e->touch_rate);
	o->what = PFS_ADVICE_POPULATE;
	o->faults_avoided = e->tracked_touched_pages;
	o->waste_bytes = e->waste_if_populated;	/* its cost: resident and never touched */
	/* hugepage first: the populate that follows then faults in huge pages */
	make_rule(o->rule, sizeof(o->rule), s, huge ? "hugepage,populate" : "populate");
	snprintf(o->reason, sizeof(o->reason),
		 "dense burst right after allocation: %.0f%% of %s touched, first touch %s after "
		 "allocation, %s%s", 100.0 * e->density, req, t1, rate,
		 huge ? "; large and long-lived: huge pages too" : "");
	snprintf(o->expect, sizeof(o->expect),
		 "its %" PRIu64 " first-touch faults become prefaulted pages at allocation (one "
		 "madvise per allocation): near 0 first-touch faults left; %s more resident than "
		 "touched%s", e->tracked_touched_pages, waste,
		 huge ? "; 512 times fewer faults and TLB entries where huge pages are granted" : "");
}

static void advise_huge(const struct pfs_adv_site *s, struct pfs_advice *o)
{
	const struct pfs_evidence *e = s->ev;
	char req[24], life[32];

	pfs_an_fmt_bytes(req, sizeof(req), e->min_size);
	pfs_evidence_fmt_time(life, sizeof(life), e->lifetime_ns, e->lifetime_ns);
	o->what = PFS_ADVICE_HUGEPAGE;
	make_rule(o->rule, sizeof(o->rule), s, "hugepage");
	snprintf(o->reason, sizeof(o->reason),
		 "large, dense, long-lived: allocations of %s and more, %.0f%% touched, living %s",
		 req, 100.0 * e->density, life);
	snprintf(o->expect, sizeof(o->expect),
		 "2 MiB pages where the kernel can give them: up to 512 times fewer faults and TLB "
		 "entries; %s", e->coarse ? "whether populate would help too, fast mode cannot tell "
		 "(see why)" : "touched gradually, so populating would only move the faults");
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
	else if (e->density < PFS_ADV_DENSE)
		snprintf(o->reason, sizeof(o->reason), "fine: %.0f%% touched, too little to populate "
			 "and too much to call sparse", 100.0 * e->density);
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
	else if (e->density >= 0 && e->density < PFS_ADV_SPARSE_SHARE &&
		 e->requested_bytes >= PFS_ADV_SPARSE_MIN_BYTES && s->kind != PFS_KIND_REALLOC)
		advise_sparse(s, thp, out);
	else if (s->kind != PFS_KIND_MMAP_FILE && e->density >= PFS_ADV_DENSE && soon(e) &&
		 burst(e) && e->tracked_touched_pages >= PFS_ADV_MIN_PAGES)
		advise_populate(s, thp, out);
	else if (s->kind != PFS_KIND_MMAP_FILE && huge_candidate(e, thp))
		advise_huge(s, out);
	else
		advise_fine(s, out);
	if (out->what != PFS_ADVICE_FINE && out->what != PFS_ADVICE_COW && !out->rule[0] &&
	    out->what != PFS_ADVICE_SPARSE)
		snprintf(out->expect + strlen(out->expect), sizeof(out->expect) - strlen(out->expect),
			 " (no rule: the site's function has no name the grammar can carry)");
}

/* ---- a report's sites --------------------------------------------------- */

/* Rules name the site's label: never an allocator's or a runtime's function (label.h). */
static const char *label_function(const struct pfs_rsite *rs)
{
	const struct pfs_rframe *l = pfs_report_label(rs);

	return l ? l->function : NULL;
}

static void merge(struct pfs_evidence *to, const struct pfs_evidence *from)
{
	to->tracked_allocs += from->tracked_allocs;
	to->requested_bytes += from->requested_bytes;
	to->requested_pages += from->requested_pages;
	to->touched_pages += from->touched_pages;
	to->touched_bytes += from->touched_bytes;
	to->tracked_touched_pages += from->tracked_touched_pages;
	to->populated_allocs += from->populated_allocs;
	to->cow_pages += from->cow_pages;
	to->prefaulted_pages += from->prefaulted_pages;
	if (from->min_size && (!to->min_size || from->min_size < to->min_size))
		to->min_size = from->min_size;
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

/* Would `glob` (the item's function) match a frame of some other site? */
static bool shared_name(const struct pfs_report *rep, uint32_t id, const char *glob)
{
	for (size_t i = 0; i < rep->nprocs; i++)
		for (size_t j = 0; j < rep->procs[i].nsites; j++) {
			const struct pfs_rsite *rs = &rep->procs[i].sites[j];

			if (rs->id == id)
				continue;
			for (size_t k = 0; k < rs->nframes; k++)
				if (rs->frames[k].function && !fnmatch(glob, rs->frames[k].function, 0))
					return true;
		}
	return false;
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

				/* the timings are the busiest process's; the counts add up */
				/* the timings of the process that touched it first-hand */
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

static bool rule_listed(const char *policy, const char *rule)
{
	size_t n = strlen(rule);

	for (const char *p = policy; (p = strstr(p, rule)) != NULL; p++)
		if ((p == policy || p[-1] == ' ') && (p[n] == '\0' || p[n] == ';'))
			return true;
	return false;
}

int pfs_adv_build(const struct pfs_report *rep, enum pfs_thp thp, struct pfs_adv_list *out)
{
	uint64_t forks = 0, proc_touched = 0;
	size_t cap = 0, keep = 0, plen = 0;
	char glob[PFS_ADV_GLOB_MAX];
	int rc;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_proc *p = rep->procs[i].proc;

		proc_touched += p->totals.first_touch_faults;
		for (size_t c = 0; c < p->nchildren; c++)
			forks += p->children[c].how == PFS_FORK || p->children[c].how == PFS_UFORK ||
				 p->children[c].how == PFS_CLONE;
	}
	rc = collect(rep, out, &cap);
	if (rc)
		goto fail;
	for (size_t k = 0; k < out->n; k++) {
		struct pfs_adv_item *it = &out->items[k];
		struct pfs_evidence *e = &it->ev;
		const struct pfs_rsite *rs = &it->rp->sites[it->index];

		pfs_evidence_density(e);
		e->resident_share = proc_touched ? (double)e->touched_pages / (double)proc_touched : 0;
		e->forks = forks;
		e->cow_per_fork = forks ? (double)e->cow_pages / (double)forks : 0;
		it->in.ev = e;
		it->in.kind = rs->site->key.kind;
		it->in.function = label_function(rs);
		it->in.name_shared = site_glob(it->in.function, glob, sizeof(glob)) &&
				     shared_name(rep, it->id, glob);
		/* a site matters by its faults, or by a large allocation it barely touches */
		if (item_faults(it) < PFS_ADV_MIN_PAGES &&
		    !(e->density >= 0 && e->density < PFS_ADV_SPARSE_SHARE &&
		      e->requested_bytes >= PFS_ADV_SPARSE_MIN_BYTES)) {
			out->quiet++;
			continue;
		}
		pfs_adv_site(&it->in, thp, &it->adv);
		out->items[keep++] = *it;
	}
	out->n = keep;
	if (out->n)
		qsort(out->items, out->n, sizeof(*out->items), cmp_item);
	for (size_t k = 0; k < out->n; k++)	/* the copies moved: point at their own evidence */
		out->items[k].in.ev = &out->items[k].ev;
	for (size_t k = 0; k < out->n; k++)
		plen += strlen(out->items[k].adv.rule) + 2;
	out->policy = calloc(plen + 1, 1);
	if (!out->policy) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t k = 0; k < out->n; k++) {
		/* two stacks through one function give one rule: once in the list */
		if (!out->items[k].adv.rule[0] || rule_listed(out->policy, out->items[k].adv.rule))
			continue;
		if (out->policy[0])
			strcat(out->policy, "; ");
		strcat(out->policy, out->items[k].adv.rule);
	}
	return 0;
fail:
	pfs_adv_free(out);
	return rc;
}

void pfs_adv_free(struct pfs_adv_list *l)
{
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
