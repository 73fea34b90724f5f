/*
 * Per-site evidence; see evidence.h.  One pass over the process's
 * ALLOC/FREE/REMAP events (sorted by seq after pfs_model_finish) gives each
 * tracked allocation its site, time and end; one pass over the TOUCH events
 * with their time bounds gives its first and last first touch.  Sites then
 * take medians over their allocations.
 */
#include "evidence.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "json.h"

#define NONE SIZE_MAX

struct alloc {
	uint64_t seq;
	uint64_t addr;
	uint64_t at, end;	/* ns from the process start; end 0: not freed */
	uint64_t size, pages;
	size_t site;		/* index into the caller's sites[]; NONE: not listed */
	bool inherited, freed, populated;
	uint64_t first_lo, first_hi, last_lo, last_hi;	/* first touches; first_hi UINT64_MAX: none */
	uint64_t touched;
	uint32_t nrec;		/* touch events that brought its pages */
};

struct site_idx {
	struct pfs_site_key key;
	size_t idx;
	UT_hash_handle hh;
};

/*
 * Lookups without a hash handle per allocation (10 million blocks would
 * cost 1 GiB of handles): live blocks by address in an open-addressing
 * table of indices, allocations by seq by binary search over an index
 * sorted by seq, each site's allocations as one run of an index grouped by
 * site (the per-site passes visit their own blocks only).
 */
#define EMPTY UINT32_MAX
#define GONE (UINT32_MAX - 1)

struct ctx {
	const struct pfs_proc *p;
	struct alloc *allocs;
	size_t nallocs;
	uint32_t *live;		/* open addressing: index into allocs, EMPTY or GONE */
	size_t live_mask;
	uint32_t *by_seq;	/* indices sorted by seq */
	size_t seq_hint;	/* where alloc_by_seq last found one */
	uint32_t *seq_map;	/* seq -> index + 1 (0: none), when seqs are dense enough; else NULL */
	uint64_t seq_map_len;
	uint32_t *members;	/* indices grouped by site */
	size_t *site_start;	/* site i's members: [site_start[i], site_start[i + 1]) */
	struct site_idx *sites;
};

static size_t addr_slot(const struct ctx *c, uint64_t addr)
{
	return (size_t)((addr >> 4) * 0x9E3779B97F4A7C15ull >> 20) & c->live_mask;
}

/* The slot holding the live block at addr, or NULL. */
static uint32_t *live_find(struct ctx *c, uint64_t addr)
{
	for (size_t i = addr_slot(c, addr);; i = (i + 1) & c->live_mask) {
		uint32_t v = c->live[i];
		if (v == EMPTY)
			return NULL;
		if (v != GONE && c->allocs[v].addr == addr)
			return &c->live[i];
	}
}

static void live_put(struct ctx *c, uint32_t idx)
{
	size_t i = addr_slot(c, c->allocs[idx].addr);
	while (c->live[i] != EMPTY && c->live[i] != GONE)
		i = (i + 1) & c->live_mask;
	c->live[i] = idx;
}

static uint64_t rel(uint64_t t, uint64_t origin)
{
	return t > origin ? t - origin : 0;
}

/* The median of v[0..n) (reorders v; quickselect, linear on average); 0 for none. */
static uint64_t median(uint64_t *v, size_t n)
{
	size_t lo = 0, hi = n ? n - 1 : 0, k = n / 2;

	if (!n)
		return 0;
	while (lo < hi) {
		uint64_t pivot = v[lo + (hi - lo) / 2];
		size_t i = lo, j = hi;

		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				uint64_t t = v[i];

				v[i] = v[j];
				v[j] = t;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			break;
	}
	return v[k];
}

static size_t site_index(const struct ctx *c, uint32_t stack, uint32_t kind)
{
	struct pfs_site_key key = {.stack = stack, .kind = kind};
	struct site_idx *e;

	HASH_FIND(hh, c->sites, &key, sizeof(key), e);
	return e ? e->idx : NONE;
}

/* Where a mapping's life ends: its FREE; a munmap that starts inside a block ends it too. */
static void end_at(struct ctx *c, uint64_t addr, uint64_t t)
{
	uint32_t *slot = live_find(c, addr);

	if (!slot)
		return;
	c->allocs[*slot].freed = true;
	c->allocs[*slot].end = t;
	*slot = GONE;
}

static int replay(struct ctx *c)
{
	const struct pfs_proc *p = c->p;
	const uint32_t ps = p->page_size ? p->page_size : 4096;

	for (size_t i = 0; i < p->nevs; i++) {
		const struct pfs_block_ev *ev = &p->evs[i];
		struct alloc *a;
		uint32_t *slot;

		switch (ev->type) {
		case PFS_REC_ALLOC:
			a = &c->allocs[c->nallocs++];
			memset(a, 0, sizeof(*a));
			a->seq = ev->seq;
			a->addr = ev->addr;
			a->at = rel(ev->time_ns, p->start_ns);
			a->size = ev->size;
			a->pages = ev->size / ps + (ev->size % ps != 0);
			a->site = site_index(c, ev->stack, ev->kind);
			a->inherited = ev->inherited;
			a->populated = ev->populated;
			a->first_lo = a->first_hi = UINT64_MAX;
			slot = live_find(c, a->addr);
			if (slot)	/* its free went unrecorded: nothing more is known of it */
				*slot = GONE;
			live_put(c, (uint32_t)(c->nallocs - 1));
			break;
		case PFS_REC_FREE:
			end_at(c, ev->addr, rel(ev->time_ns, p->start_ns));
			break;
		case PFS_REC_REMAP:
			/* the block lives on at its new address */
			slot = live_find(c, ev->addr);
			if (slot && ev->new_length) {
				uint32_t idx = *slot;

				*slot = GONE;
				end_at(c, ev->new_addr, rel(ev->time_ns, p->start_ns));
				c->allocs[idx].addr = ev->new_addr;
				live_put(c, idx);
			}
			break;
		}
	}
	return 0;
}

static struct alloc *alloc_by_seq(struct ctx *c, uint64_t seq)
{
	size_t lo = 0, hi = c->nallocs;

	if (c->seq_map) {
		uint32_t v = seq < c->seq_map_len ? c->seq_map[seq] : 0;

		return v ? &c->allocs[v - 1] : NULL;
	}
	/* touches come in runs of one allocation: try where the last one was found */
	if (c->seq_hint < c->nallocs && c->allocs[c->by_seq[c->seq_hint]].seq == seq &&
	    (c->seq_hint == 0 || c->allocs[c->by_seq[c->seq_hint - 1]].seq != seq))
		return &c->allocs[c->by_seq[c->seq_hint]];

	while (lo < hi) { /* the first with that seq: an earlier ALLOC wins, as before */
		size_t mid = (lo + hi) / 2;

		if (c->allocs[c->by_seq[mid]].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->nallocs && c->allocs[c->by_seq[lo]].seq == seq) {
		c->seq_hint = lo;
		return &c->allocs[c->by_seq[lo]];
	}
	return NULL;
}

static const struct alloc *sort_base;

static int cmp_seq_idx(const void *x, const void *y)
{
	const struct alloc *a = &sort_base[*(const uint32_t *)x], *b = &sort_base[*(const uint32_t *)y];

	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1;
}

/* by_seq and members; 0 or -ENOMEM. */
static int index_allocs(struct ctx *c, size_t nsites)
{
	bool sorted = true;

	c->by_seq = malloc((c->nallocs + 1) * sizeof(*c->by_seq));
	c->members = malloc((c->nallocs + 1) * sizeof(*c->members));
	c->site_start = calloc(nsites + 2, sizeof(*c->site_start));
	if (!c->by_seq || !c->members || !c->site_start)
		return -ENOMEM;
	for (size_t i = 0; i < c->nallocs; i++) {
		c->by_seq[i] = (uint32_t)i;
		if (i && c->allocs[i].seq < c->allocs[i - 1].seq)
			sorted = false;
	}
	if (!sorted) {
		sort_base = c->allocs;
		qsort(c->by_seq, c->nallocs, sizeof(*c->by_seq), cmp_seq_idx);
	}
	/* seqs count every record of the process: usually dense, then a direct map beats a search */
	uint64_t max_seq = c->nallocs ? c->allocs[c->by_seq[c->nallocs - 1]].seq : 0;
	if (c->nallocs && max_seq < 8 * (uint64_t)c->nallocs + 65536) {
		c->seq_map = calloc(max_seq + 1, sizeof(*c->seq_map));
		if (c->seq_map) {
			c->seq_map_len = max_seq + 1;
			for (size_t i = c->nallocs; i-- > 0;) /* the earliest ALLOC of a seq wins */
				c->seq_map[c->allocs[c->by_seq[i]].seq] = c->by_seq[i] + 1;
		}
	}
	/* counting sort by site; unlisted sites (NONE) last */
	for (size_t i = 0; i < c->nallocs; i++) {
		size_t s = c->allocs[i].site == NONE ? nsites : c->allocs[i].site;

		c->site_start[s + 1]++;
	}
	for (size_t s = 0; s < nsites + 1; s++)
		c->site_start[s + 1] += c->site_start[s];
	size_t *fill = calloc(nsites + 1, sizeof(*fill));
	if (!fill)
		return -ENOMEM;
	for (size_t i = 0; i < c->nallocs; i++) {
		size_t s = c->allocs[i].site == NONE ? nsites : c->allocs[i].site;

		c->members[c->site_start[s] + fill[s]++] = (uint32_t)i;
	}
	free(fill);
	return 0;
}

static void touch(struct ctx *c, const struct pfs_touch_ev *t, uint64_t lo, uint64_t hi)
{
	struct alloc *a;

	if (t->cow || !t->alloc_seq)
		return;
	a = alloc_by_seq(c, t->alloc_seq);
	if (!a)
		return;
	a->touched += t->pages;
	a->nrec++;
	if (a->first_hi == UINT64_MAX) {
		a->first_lo = lo;
		a->first_hi = hi;
		a->last_lo = lo;
		a->last_hi = hi;
		return;
	}
	if (lo < a->first_lo)
		a->first_lo = lo;
	if (hi < a->first_hi)
		a->first_hi = hi;
	if (lo > a->last_lo)
		a->last_lo = lo;
	if (hi > a->last_hi)
		a->last_hi = hi;
}

/* The last time the process is known to have lived, from its start. */
static uint64_t known_end(const struct pfs_proc *p, const uint64_t *hi)
{
	uint64_t end = p->end_ns ? rel(p->end_ns, p->start_ns) : 0;

	for (size_t i = 0; i < p->ntouches; i++)
		if (hi[i] > end)
			end = hi[i];
	for (size_t i = 0; i < p->nscan_evs; i++)
		if (rel(p->scan_evs[i].time_ns, p->start_ns) > end)
			end = rel(p->scan_evs[i].time_ns, p->start_ns);
	return end;
}

static uint64_t forks_of(const struct pfs_proc *p)
{
	uint64_t n = p->fork_parent ? 1 : 0;

	/* vfork and posix_spawn share or replace the memory: nothing to copy */
	for (size_t i = 0; i < p->nchildren; i++)
		if (p->children[i].how == PFS_FORK || p->children[i].how == PFS_UFORK ||
		    p->children[i].how == PFS_CLONE)
			n++;
	return n;
}

/* Medians over one site's touched allocations: `v` has room for 6 x nallocs. */
static void site_times(struct ctx *c, size_t idx, struct pfs_evidence *e, uint64_t end,
		       uint64_t *v)
{
	size_t m = c->nallocs, n = 0, nl = 0, ncoarse = 0;
	uint64_t *flo = v, *fhi = v + m, *slo = v + 2 * m, *shi = v + 3 * m, *life = v + 4 * m;
	uint64_t *rate = v + 5 * m;

	for (size_t k = c->site_start[idx]; k < c->site_start[idx + 1]; k++) {
		const struct alloc *a = &c->allocs[c->members[k]];
		uint64_t stop = a->freed ? a->end : end;

		if (a->inherited)
			continue;
		life[nl++] = stop > a->at ? stop - a->at : 0;
		if (life[nl - 1] > e->lifetime_max_ns)
			e->lifetime_max_ns = life[nl - 1];
		e->freed_allocs += a->freed;
		if (a->first_hi == UINT64_MAX)
			continue;
		flo[n] = a->first_lo > a->at ? a->first_lo - a->at : 0;
		fhi[n] = a->first_hi > a->at ? a->first_hi - a->at : 0;
		slo[n] = a->last_lo > a->first_hi ? a->last_lo - a->first_hi : 0;
		shi[n] = a->last_hi - a->first_lo;
		if (shi[n] > e->spread_max_ns)
			e->spread_max_ns = shi[n];
		ncoarse += a->nrec == 1 && shi[n] > PFS_EVIDENCE_COARSE_NS;
		/* pages over the longest the touching can have taken (at least 1 us) */
		rate[n] = (uint64_t)((double)a->touched * 1e9 / (double)(shi[n] > 1000 ? shi[n] : 1000));
		n++;
	}
	e->timed_allocs = n;
	e->coarse = !e->exact && n && ncoarse == n;
	e->first_touch_lo_ns = median(flo, n);
	e->first_touch_hi_ns = median(fhi, n);
	e->spread_lo_ns = median(slo, n);
	e->spread_hi_ns = median(shi, n);
	e->touch_rate = (double)median(rate, n);
	e->lifetime_ns = median(life, nl);
}

static void site_sizes(struct ctx *c, size_t idx, const struct pfs_site *s,
		       struct pfs_evidence *e, uint64_t proc_touched)
{
	for (size_t k = c->site_start[idx]; k < c->site_start[idx + 1]; k++) {
		const struct alloc *a = &c->allocs[c->members[k]];

		if (a->inherited)
			continue;
		e->tracked_allocs++;
		e->requested_bytes += a->size;
		/* resident before any touch: neither sparse nor dense, and nothing to populate */
		if (a->populated) {
			e->populated_allocs++;
			continue;
		}
		e->requested_pages += a->pages;
		e->tracked_touched_pages += a->touched < a->pages ? a->touched : a->pages;
		if (!e->min_size || a->size < e->min_size)
			e->min_size = a->size;
	}
	e->touched_pages = s->first_touch_faults;
	e->touched_bytes = s->first_touch_faults * e->page_size;
	e->cow_pages = s->cow_faults;
	e->prefaulted_pages = s->prefaulted_pages;
	pfs_evidence_density(e);
	e->resident_share = proc_touched ? (double)s->first_touch_faults / (double)proc_touched : 0;
}

void pfs_evidence_density(struct pfs_evidence *e)
{
	/* pages a policy prefaulted were resident all the same: a populated site is not sparse */
	uint64_t used = e->tracked_touched_pages + e->prefaulted_pages;

	if (used > e->requested_pages)
		used = e->requested_pages;
	e->density = e->requested_pages ? (double)used / (double)e->requested_pages : -1.0;
	e->waste_if_populated = (e->requested_pages - used) * e->page_size;
}

int pfs_evidence_compute(const struct pfs_proc *p, const struct pfs_series *series,
			 const struct pfs_site *const *sites, size_t n,
			 struct pfs_evidence **out)
{
	struct ctx c = {.p = p};
	struct site_idx *idx = NULL, *e, *tmp;
	struct pfs_evidence *ev = NULL;
	uint64_t *lo = NULL, *hi = NULL, *scratch = NULL, end, forks = forks_of(p);
	int rc = -ENOMEM;

	*out = NULL;
	ev = calloc(n + 1, sizeof(*ev));
	idx = calloc(n + 1, sizeof(*idx));
	size_t nalloc_evs = 0;

	for (size_t i = 0; i < p->nevs; i++)
		nalloc_evs += p->evs[i].type == PFS_REC_ALLOC;
	if (nalloc_evs >= GONE)
		goto out;
	for (c.live_mask = 15; c.live_mask < 2 * nalloc_evs; c.live_mask = c.live_mask * 2 + 1)
		;
	c.live = malloc((c.live_mask + 1) * sizeof(*c.live));
	if (c.live)
		memset(c.live, 0xff, (c.live_mask + 1) * sizeof(*c.live)); /* EMPTY */
	c.allocs = calloc(nalloc_evs + 1, sizeof(*c.allocs));
	lo = calloc(p->ntouches + 1, sizeof(*lo));
	hi = calloc(p->ntouches + 1, sizeof(*hi));
	scratch = calloc(6 * (nalloc_evs + 1), sizeof(*scratch));
	if (!ev || !idx || !c.allocs || !c.live || !lo || !hi || !scratch)
		goto out;
	for (size_t i = 0; i < n; i++) {
		idx[i].key = sites[i]->key;
		idx[i].idx = i;
		HASH_FIND(hh, c.sites, &idx[i].key, sizeof(idx[i].key), e);
		if (!e)
			HASH_ADD(hh, c.sites, key, sizeof(idx[i].key), &idx[i]);
	}
	rc = replay(&c);
	if (!rc)
		rc = index_allocs(&c, n);
	if (!rc) {
		/*
		 * Without the storms' "one scan interval before" bound: a program
		 * whose scans come at its allocator calls can touch for 100 ms
		 * between two of them (CPython's memset of a bytearray), and the
		 * interval estimated from its regular ticks would put the first
		 * touch 90 ms late.  The previous scan and the ALLOC always hold.
		 */
		struct pfs_series loose = *series;

		loose.scan_interval_ns = 0;
		rc = pfs_storms_touch_bounds(p, &loose, lo, hi);
	}
	if (rc)
		goto out;
	/*
	 * Exact mode's events are faults of one allocation within 100 us,
	 * stamped with the last (analyzer/faults.c): the previous event bounds
	 * them from below as a previous scan does, only much closer.
	 */
	for (size_t i = 0; i < p->ntouches; i++)
		touch(&c, &p->touches[i], lo[i], hi[i]);
	end = known_end(p, hi);
	for (size_t i = 0; i < n; i++) {
		struct pfs_evidence *x = &ev[i];

		x->page_size = p->page_size ? p->page_size : 4096;
		x->exact = p->mode == PFS_MODE_EXACT;
		x->forks = forks;
		site_sizes(&c, i, sites[i], x, p->totals.first_touch_faults);
		site_times(&c, i, x, end, scratch);
		x->cow_per_fork = forks ? (double)x->cow_pages / (double)forks : 0;
	}
	for (size_t i = 0; i < series->nstorms; i++) {
		const struct pfs_storm *st = &series->storms[i];

		if (st->top_index < n && st->rate > ev[st->top_index].storm_rate) {
			ev[st->top_index].storm_rate = st->rate;
			ev[st->top_index].storm_faults = st->top_faults;
		}
	}
	*out = ev;
	ev = NULL;
	rc = 0;
out:
	free(c.live);
	free(c.by_seq);
	free(c.seq_map);
	free(c.members);
	free(c.site_start);
	HASH_ITER(hh, c.sites, e, tmp)
		HASH_DEL(c.sites, e);
	free(idx);
	free(c.allocs);
	free(lo);
	free(hi);
	free(scratch);
	free(ev);
	return rc;
}

void pfs_evidence_fmt_time(char *buf, size_t len, uint64_t lo, uint64_t hi)
{
	/* one unit for both bounds, chosen by the upper one */
	const char *unit = hi >= 10000000000ull ? "s" : hi >= 1000000 ? "ms" : "us";
	double div = hi >= 10000000000ull ? 1e9 : hi >= 1000000 ? 1e6 : 1e3;

	if (lo >= hi || (double)(hi - lo) < div / 20)
		snprintf(buf, len, "%.1f %s", (double)hi / div, unit);
	else
		snprintf(buf, len, "%.1f-%.1f %s", (double)lo / div, (double)hi / div, unit);
}

static void jbounds(struct pfs_json *w, const char *key, uint64_t lo, uint64_t hi, bool known)
{
	pfs_json_key(w, key);
	if (!known) {
		pfs_json_null(w);
		return;
	}
	pfs_json_begin_object(w);
	pfs_json_kv_uint(w, "min", lo);
	pfs_json_kv_uint(w, "max", hi);
	pfs_json_end_object(w);
}

void pfs_evidence_json(struct pfs_json *w, const struct pfs_evidence *e)
{
	bool timed = e->timed_allocs > 0;

	pfs_json_begin_object(w);
	pfs_json_kv_uint(w, "tracked_allocations", e->tracked_allocs);
	pfs_json_kv_uint(w, "populated_allocations", e->populated_allocs);
	pfs_json_kv_uint(w, "requested_bytes", e->requested_bytes);
	pfs_json_kv_uint(w, "touched_pages", e->touched_pages);
	pfs_json_kv_uint(w, "touched_bytes", e->touched_bytes);
	pfs_json_key(w, "touched_share");
	if (e->density >= 0)
		pfs_json_double(w, e->density);
	else
		pfs_json_null(w);
	pfs_json_kv_double(w, "resident_share", e->resident_share);
	pfs_json_kv_uint(w, "waste_if_populated_bytes", e->waste_if_populated);
	jbounds(w, "first_touch_after_ns", e->first_touch_lo_ns, e->first_touch_hi_ns, timed);
	jbounds(w, "touch_spread_ns", e->spread_lo_ns, e->spread_hi_ns, timed);
	pfs_json_kv_uint(w, "touch_spread_max_ns", e->spread_max_ns);
	pfs_json_key(w, "lifetime_ns");
	if (e->tracked_allocs)
		pfs_json_uint(w, e->lifetime_ns);
	else
		pfs_json_null(w);
	pfs_json_kv_uint(w, "lifetime_max_ns", e->lifetime_max_ns);
	pfs_json_kv_uint(w, "freed_allocations", e->freed_allocs);
	pfs_json_kv_uint(w, "timed_allocations", e->timed_allocs);
	pfs_json_key(w, "exact_times");
	pfs_json_bool(w, e->exact);
	pfs_json_key(w, "coarse_times");
	pfs_json_bool(w, e->coarse);
	pfs_json_kv_double(w, "storm_rate", e->storm_rate);
	pfs_json_kv_uint(w, "storm_faults", e->storm_faults);
	pfs_json_kv_double(w, "touch_rate", e->touch_rate);
	pfs_json_kv_uint(w, "cow_pages", e->cow_pages);
	pfs_json_kv_uint(w, "forks", e->forks);
	pfs_json_kv_double(w, "cow_per_fork", e->cow_per_fork);
	pfs_json_end_object(w);
}

void pfs_evidence_summary(char *buf, size_t len, const struct pfs_evidence *e)
{
	char req[24], tou[24], t1[32], t2[32], t3[32], rate[24];
	FILE *f = fmemopen(buf, len, "w");

	if (!f) {
		snprintf(buf, len, "?");
		return;
	}
	pfs_an_fmt_bytes(tou, sizeof(tou), e->touched_bytes);
	if (e->tracked_allocs) {
		pfs_an_fmt_bytes(req, sizeof(req), e->requested_bytes);
		double pc = e->density >= 0 ? 100.0 * e->density : 0.0;

		fprintf(f, "allocated %s, touched %s (%.*f%%", req, tou, pc < 1 ? 1 : 0, pc);
	} else {
		fprintf(f, "touched %s (small blocks", tou);
	}
	fprintf(f, ", %.1f%% of resident growth)", 100.0 * e->resident_share);
	if (e->timed_allocs) {
		pfs_evidence_fmt_time(t1, sizeof(t1), e->first_touch_lo_ns, e->first_touch_hi_ns);
		pfs_evidence_fmt_time(t2, sizeof(t2), e->spread_lo_ns, e->spread_hi_ns);
		fprintf(f, "; first touch %s after allocation, spread %s", t1, t2);
	}
	if (e->storm_rate > 0) {
		pfs_an_fmt_rate(rate, sizeof(rate), e->storm_rate);
		fprintf(f, "; storm %s", rate);
	}
	if (e->tracked_allocs) {
		pfs_evidence_fmt_time(t3, sizeof(t3), e->lifetime_ns, e->lifetime_ns);
		fprintf(f, "; lives %s%s", t3, e->freed_allocs ? "" : " (to the end)");
	}
	if (e->cow_pages)
		fprintf(f, "; %.0f copy-on-write pages per fork (%" PRIu64 " fork%s)", e->cow_per_fork,
			e->forks, e->forks == 1 ? "" : "s");
	fclose(f);
}
