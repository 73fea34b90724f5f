/*
 * Per-site evidence; see evidence.h.  One pass over the TOUCH events with
 * their time bounds folds each touched allocation's first and last first
 * touch; one pass over the process's ALLOC/FREE/REMAP events (sorted by
 * seq after pfs_model_finish) gives each block its site, time and end, and
 * hands its figures to its site when it ends.  Sites then take medians.
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
#define EMPTY UINT32_MAX
#define GONE (UINT32_MAX - 1)

/*
 * Streaming, so that memory grows with the live blocks and the values the
 * medians need, not with every block of the log (10 M blocks with a record
 * per block took 2 GB held at once): the touches are folded per allocation
 * first (only touched ones have an entry), then the ALLOC/FREE/REMAP events
 * are replayed in order; each block's figures go to its site when it ends
 * (FREE, or the process's end).
 */

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

/* One allocation's first touches: folded from the TOUCH events by its seq. */
struct tagg {
	uint64_t seq;		/* 0: empty slot */
	uint64_t first_lo, first_hi, last_lo, last_hi;
	uint64_t touched;	/* pages */
	uint64_t faults;	/* as the kernel took them */
	uint32_t nrec;		/* touch events that brought its pages */
};

/* A live block during the replay. */
struct live {
	uint64_t addr;
	uint64_t seq;
	uint64_t at;		/* ns from the process start */
	uint64_t size, length;
	uint32_t site;		/* index into sites[]; UINT32_MAX: not listed */
	uint8_t kind;
	uint8_t inherited, populated, reserved;
};

/* A growing vector of values for one site's medians. */
struct vec {
	uint64_t *v;
	size_t n, cap;
};

struct site_acc {
	struct vec life, flo, fhi, slo, shi, rate;
	size_t ncoarse;
};

struct site_idx {
	struct pfs_site_key key;
	size_t idx;
	UT_hash_handle hh;
};

struct ctx {
	const struct pfs_proc *p;
	struct tagg *tg;	/* open addressing by seq */
	size_t tg_mask;
	struct live *lv;	/* live blocks: a pool with a free list */
	size_t nlv, lv_cap;
	uint32_t *lv_free;
	size_t nfree, free_cap;
	uint32_t *slots;	/* open addressing by addr: index into lv, EMPTY or GONE */
	size_t slot_mask, slots_used;
	struct site_acc *acc;
	struct pfs_evidence *ev;
	size_t nsites;
	uint64_t end;		/* the process's known end, from its start */
	struct site_idx *sites;
};

static int vec_push(struct vec *v, uint64_t x)
{
	if (pfs_an_reserve((void **)&v->v, &v->cap, v->n + 1, sizeof(*v->v)))
		return -ENOMEM;
	v->v[v->n++] = x;
	return 0;
}

static void vec_free(struct vec *v)
{
	free(v->v);
}

static uint64_t mix(uint64_t x)
{
	return (x >> 4) * 0x9E3779B97F4A7C15ull >> 20;
}

/* ---- touches, folded by allocation ------------------------------------------ */

static struct tagg *tagg_get(struct ctx *c, uint64_t seq, bool create)
{
	for (size_t i = mix(seq) & c->tg_mask;; i = (i + 1) & c->tg_mask) {
		if (c->tg[i].seq == seq)
			return &c->tg[i];
		if (!c->tg[i].seq) {
			if (!create)
				return NULL;
			c->tg[i].seq = seq;
			c->tg[i].first_hi = UINT64_MAX;
			return &c->tg[i];
		}
	}
}

static void touch(struct ctx *c, const struct pfs_touch_ev *t, uint64_t lo, uint64_t hi)
{
	struct tagg *a;

	if (t->cow || !t->alloc_seq)
		return;
	a = tagg_get(c, t->alloc_seq, true);
	a->touched += t->pages;
	a->faults += t->faults ? t->faults : t->pages;	/* logs before the field: one per page */
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

/* ---- live blocks ---------------------------------------------------------------- */

static uint32_t *slot_find(struct ctx *c, uint64_t addr)
{
	for (size_t i = mix(addr) & c->slot_mask;; i = (i + 1) & c->slot_mask) {
		uint32_t v = c->slots[i];
		if (v == EMPTY)
			return NULL;
		if (v != GONE && c->lv[v].addr == addr)
			return &c->slots[i];
	}
}

/* Room for one more entry, the table at most half full (GONE slots counted): 0 or -ENOMEM. */
static int slots_room(struct ctx *c)
{
	if (2 * (c->slots_used + 1) <= c->slot_mask + 1)
		return 0;
	size_t mask = c->slot_mask * 2 + 1, live = 0;
	uint32_t *old = c->slots, *n = malloc((mask + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n, 0xff, (mask + 1) * sizeof(*n));
	for (size_t i = 0; i <= c->slot_mask; i++) {
		if (old[i] == EMPTY || old[i] == GONE)
			continue;
		size_t j = mix(c->lv[old[i]].addr) & mask;
		while (n[j] != EMPTY)
			j = (j + 1) & mask;
		n[j] = old[i];
		live++;
	}
	free(old);
	c->slots = n;
	c->slot_mask = mask;
	c->slots_used = live;
	return 0;
}

static int slot_put(struct ctx *c, uint32_t idx)
{
	if (slots_room(c))
		return -ENOMEM;
	size_t i = mix(c->lv[idx].addr) & c->slot_mask;
	while (c->slots[i] != EMPTY && c->slots[i] != GONE)
		i = (i + 1) & c->slot_mask;
	if (c->slots[i] == EMPTY)
		c->slots_used++;
	c->slots[i] = idx;
	return 0;
}

static int live_new(struct ctx *c, uint32_t *idx)
{
	if (c->nfree) {
		*idx = c->lv_free[--c->nfree];
		return 0;
	}
	if (c->nlv >= GONE || pfs_an_reserve((void **)&c->lv, &c->lv_cap, c->nlv + 1, sizeof(*c->lv)))
		return -ENOMEM;
	*idx = (uint32_t)c->nlv++;
	return 0;
}

/* ---- a block ends: its figures go to its site ------------------------------------ */

/*
 * Whether a block's pages are its own, counted by its own TOUCH records: a
 * mapping, a block that has such records, or a malloc chunk with a mapping
 * of its own (glibc's: its usable size is a whole number of pages less the
 * two words of its header).  A chunk on the shared heap has none: its
 * pages come as the site's heap pages (alloc_seq 0), so whether it was
 * touched sparsely or densely is not known, and it is left out.
 */
static bool alone(const struct live *a, const struct tagg *g, uint32_t ps)
{
	if (g || a->kind == PFS_KIND_MMAP || a->kind == PFS_KIND_MMAP_FILE || a->kind == PFS_KIND_BRK)
		return true;
	return a->length && (a->length + 2 * sizeof(uint64_t)) % ps == 0;
}

static int finish(struct ctx *c, uint32_t idx, bool freed, uint64_t t)
{
	const struct live *a = &c->lv[idx];
	const uint32_t ps = c->p->page_size ? c->p->page_size : 4096;
	int rc = 0;

	if (pfs_an_reserve((void **)&c->lv_free, &c->free_cap, c->nfree + 1, sizeof(*c->lv_free)))
		return -ENOMEM;
	if (a->site != UINT32_MAX && !a->inherited) {
		struct pfs_evidence *e = &c->ev[a->site];
		struct site_acc *s = &c->acc[a->site];
		const struct tagg *g = tagg_get(c, a->seq, false);
		uint64_t pages = a->size / ps + (a->size % ps != 0), touched = g ? g->touched : 0;
		uint64_t faults = g ? g->faults : 0;
		uint64_t stop = freed ? t : c->end, life = stop > a->at ? stop - a->at : 0;

		/* sizes */
		e->tracked_allocs++;
		e->reserved_allocs += a->reserved;
		e->requested_bytes += a->size;
		if (a->size > e->max_size)
			e->max_size = a->size;
		if (a->populated) {	/* resident before any touch: neither sparse nor dense */
			e->populated_allocs++;
		} else if (!alone(a, g, ps)) {	/* its pages are counted as the site's heap pages */
			e->shared_allocs++;
		} else {
			e->requested_pages += pages;
			e->tracked_touched_pages += touched < pages ? touched : pages;
			e->tracked_touch_faults += faults < pages ? faults : pages;
		}
		if (!e->min_size || a->size < e->min_size)
			e->min_size = a->size;
		/* times */
		rc |= vec_push(&s->life, life);
		if (life > e->lifetime_max_ns)
			e->lifetime_max_ns = life;
		e->freed_allocs += freed;
		if (g && g->first_hi != UINT64_MAX) {
			uint64_t shi = g->last_hi - g->first_lo;

			rc |= vec_push(&s->flo, g->first_lo > a->at ? g->first_lo - a->at : 0);
			rc |= vec_push(&s->fhi, g->first_hi > a->at ? g->first_hi - a->at : 0);
			rc |= vec_push(&s->slo, g->last_lo > g->first_hi ? g->last_lo - g->first_hi : 0);
			rc |= vec_push(&s->shi, shi);
			if (shi > e->spread_max_ns)
				e->spread_max_ns = shi;
			s->ncoarse += g->nrec == 1 && shi > PFS_EVIDENCE_COARSE_NS;
			/*
			 * pages over the longest the touching can have taken (at least
			 * 1 us), less what the program spent waiting for a CPU then
			 */
			uint64_t took = pfs_model_unwaited_ns(c->p, g->first_lo, g->last_hi);
			rc |= vec_push(&s->rate, (uint64_t)((double)g->touched * 1e9 / (double)(took > 1000 ? took : 1000)));
		}
	}
	c->lv_free[c->nfree++] = idx;
	return rc ? -ENOMEM : 0;
}

static size_t site_index(const struct ctx *c, uint32_t stack, uint32_t kind)
{
	struct pfs_site_key key = {.stack = stack, .kind = kind};
	struct site_idx *e;

	HASH_FIND(hh, c->sites, &key, sizeof(key), e);
	return e ? e->idx : NONE;
}

/* Where a mapping's life ends: its FREE; a munmap that starts inside a block ends it too. */
static int end_at(struct ctx *c, uint64_t addr, uint64_t t)
{
	uint32_t *slot = slot_find(c, addr);
	uint32_t idx;

	if (!slot)
		return 0;
	idx = *slot;
	*slot = GONE;
	return finish(c, idx, true, t);
}

static int replay(struct ctx *c)
{
	const struct pfs_proc *p = c->p;
	int rc = 0;

	for (size_t i = 0; i < p->nevs && !rc; i++) {
		const struct pfs_block_ev *ev = &p->evs[i];
		uint32_t *slot, idx;
		size_t site;

		switch (ev->type) {
		case PFS_REC_ALLOC:
			slot = slot_find(c, ev->addr);
			if (slot) {	/* its free went unrecorded: it lived to the end, as far as is known */
				idx = *slot;
				*slot = GONE;
				if ((rc = finish(c, idx, false, 0)) != 0)
					break;
			}
			if ((rc = live_new(c, &idx)) != 0)
				break;
			site = site_index(c, ev->stack, ev->kind);
			c->lv[idx] = (struct live){
				.addr = ev->addr, .seq = ev->seq, .at = rel(ev->time_ns, p->start_ns), .size = ev->size,
				.length = ev->length, .kind = ev->kind,
				.site = site == NONE ? UINT32_MAX : (uint32_t)site,
				.inherited = ev->inherited || ev->category, /* no allocation of this process */
				.populated = ev->populated,
				.reserved = ev->reserved,
			};
			rc = slot_put(c, idx);
			break;
		case PFS_REC_FREE:
			rc = end_at(c, ev->addr, rel(ev->time_ns, p->start_ns));
			break;
		case PFS_REC_REMAP:
			/* the block lives on at its new address */
			slot = slot_find(c, ev->addr);
			if (slot && ev->new_length) {
				idx = *slot;
				*slot = GONE;
				if ((rc = end_at(c, ev->new_addr, rel(ev->time_ns, p->start_ns))) != 0)
					break;
				c->lv[idx].addr = ev->new_addr;
				rc = slot_put(c, idx);
			}
			break;
		}
	}
	/* what is still live lived to the end */
	for (size_t i = 0; i <= c->slot_mask && !rc; i++)
		if (c->slots[i] != EMPTY && c->slots[i] != GONE)
			rc = finish(c, c->slots[i], false, 0);
	return rc;
}

/* The site's medians, from what its blocks left. */
static void site_times(struct site_acc *s, struct pfs_evidence *e)
{
	size_t n = s->shi.n;

	e->timed_allocs = n;
	e->coarse = !e->exact && n && s->ncoarse == n;
	e->first_touch_lo_ns = median(s->flo.v, n);
	e->first_touch_hi_ns = median(s->fhi.v, n);
	e->spread_lo_ns = median(s->slo.v, n);
	e->spread_hi_ns = median(s->shi.v, n);
	e->touch_rate = (double)median(s->rate.v, n);
	e->lifetime_ns = median(s->life.v, s->life.n);
}

/* Memory in pages, faults as the kernel took them (a huge page mapped by one fault is one). */
static void site_sizes(const struct pfs_site *s, struct pfs_evidence *e, uint64_t proc_touched)
{
	e->touched_pages = s->first_touch_pages;
	e->touched_bytes = s->first_touch_pages * e->page_size;
	e->touch_faults = s->first_touch_faults;
	e->cow_pages = s->cow_pages;
	e->cow_faults = s->cow_faults;
	e->prefaulted_pages = s->prefaulted_pages;
	pfs_evidence_density(e);
	e->resident_share = proc_touched ? (double)s->first_touch_pages / (double)proc_touched : 0;
}

/* The process's first-touch pages: the sum of its sites' (the totals count faults). */
static uint64_t proc_pages(const struct pfs_proc *p)
{
	uint64_t n = 0;

	for (size_t i = 0; i < p->nsites; i++)
		if (p->ranked[i]->key.kind != PFS_KIND_SELF)	/* as the totals */
			n += p->ranked[i]->first_touch_pages;
	return n;
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
	struct ctx c = {.p = p, .nsites = n};
	struct site_idx *idx = NULL, *e, *tmp;
	struct pfs_evidence *ev = NULL;
	uint64_t *lo = NULL, *hi = NULL, forks = forks_of(p), touched_total = proc_pages(p);
	size_t touched_allocs = 0;
	int rc = -ENOMEM;

	*out = NULL;
	ev = calloc(n + 1, sizeof(*ev));
	idx = calloc(n + 1, sizeof(*idx));
	c.acc = calloc(n + 1, sizeof(*c.acc));
	lo = pfs_an_zalloc(p->ntouches + 1, sizeof(*lo));
	hi = pfs_an_zalloc(p->ntouches + 1, sizeof(*hi));
	/* at most one entry per touch event; half full at most */
	for (size_t i = 0; i < p->ntouches; i++)
		touched_allocs += !p->touches[i].cow && p->touches[i].alloc_seq;
	for (c.tg_mask = 15; c.tg_mask < 2 * touched_allocs; c.tg_mask = c.tg_mask * 2 + 1)
		;
	c.tg = calloc(c.tg_mask + 1, sizeof(*c.tg));
	c.slot_mask = 1023;
	c.slots = malloc((c.slot_mask + 1) * sizeof(*c.slots));
	if (!ev || !idx || !c.acc || !lo || !hi || !c.tg || !c.slots)
		goto out;
	memset(c.slots, 0xff, (c.slot_mask + 1) * sizeof(*c.slots)); /* EMPTY */
	c.ev = ev;
	for (size_t i = 0; i < n; i++) {
		idx[i].key = sites[i]->key;
		idx[i].idx = i;
		HASH_FIND(hh, c.sites, &idx[i].key, sizeof(idx[i].key), e);
		if (!e)
			HASH_ADD(hh, c.sites, key, sizeof(idx[i].key), &idx[i]);
		ev[i].page_size = p->page_size ? p->page_size : 4096;
		ev[i].exact = p->mode == PFS_MODE_EXACT;
		ev[i].forks = forks;
	}
	{
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
	c.end = known_end(p, hi);
	rc = replay(&c);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct pfs_evidence *x = &ev[i];

		site_sizes(sites[i], x, touched_total);
		site_times(&c.acc[i], x);
		x->cow_per_fork = forks ? (double)x->cow_pages / (double)forks : 0;
		x->proc_life_ns = c.end;
		x->burst_rate = series->threshold;
	}
	for (size_t i = 0; i < series->nstorms; i++) {
		const struct pfs_storm *st = &series->storms[i];

		/* one scan found it whole: its rate is only a lower bound, no evidence of a burst */
		if (st->top_index < n && !st->one_scan && st->rate > ev[st->top_index].storm_rate) {
			ev[st->top_index].storm_rate = st->rate;
			ev[st->top_index].storm_faults = st->top_faults;
		}
	}
	*out = ev;
	ev = NULL;
	rc = 0;
out:
	for (size_t i = 0; c.acc && i < n; i++) {
		vec_free(&c.acc[i].life);
		vec_free(&c.acc[i].flo);
		vec_free(&c.acc[i].fhi);
		vec_free(&c.acc[i].slo);
		vec_free(&c.acc[i].shi);
		vec_free(&c.acc[i].rate);
	}
	free(c.acc);
	free(c.tg);
	free(c.lv);
	free(c.lv_free);
	free(c.slots);
	HASH_ITER(hh, c.sites, e, tmp)
		HASH_DEL(c.sites, e);
	free(idx);
	pfs_an_release(lo, p->ntouches + 1, sizeof(*lo));
	pfs_an_release(hi, p->ntouches + 1, sizeof(*hi));
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
	pfs_json_kv_uint(w, "reserved_allocations", e->reserved_allocs);
	pfs_json_kv_uint(w, "shared_heap_allocations", e->shared_allocs);
	pfs_json_kv_uint(w, "requested_bytes", e->requested_bytes);
	pfs_json_kv_uint(w, "min_size", e->min_size);
	pfs_json_kv_uint(w, "max_size", e->max_size);
	pfs_json_kv_uint(w, "touched_pages", e->touched_pages);
	pfs_json_kv_uint(w, "touched_bytes", e->touched_bytes);
	pfs_json_kv_uint(w, "first_touch_faults", e->touch_faults);
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
	pfs_json_kv_uint_or_null(w, "lifetime_ns", e->tracked_allocs, e->lifetime_ns);
	pfs_json_kv_uint(w, "lifetime_max_ns", e->lifetime_max_ns);
	pfs_json_kv_uint(w, "freed_allocations", e->freed_allocs);
	pfs_json_kv_uint(w, "process_life_ns", e->proc_life_ns);
	pfs_json_kv_uint(w, "timed_allocations", e->timed_allocs);
	pfs_json_key(w, "exact_times");
	pfs_json_bool(w, e->exact);
	pfs_json_key(w, "coarse_times");
	pfs_json_bool(w, e->coarse);
	pfs_json_kv_double(w, "storm_rate", e->storm_rate);
	pfs_json_kv_uint(w, "storm_faults", e->storm_faults);
	pfs_json_kv_double(w, "touch_rate", e->touch_rate);
	pfs_json_kv_uint(w, "cow_pages", e->cow_pages);
	pfs_json_kv_uint(w, "cow_faults", e->cow_faults);
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
	if (e->tracked_allocs && e->density >= 0) {
		double pc = 100.0 * e->density;

		pfs_an_fmt_bytes(req, sizeof(req), e->requested_bytes);
		fprintf(f, "allocated %s, touched %s (%.*f%%", req, tou, pc < 1 ? 1 : 0, pc);
	} else if (e->tracked_allocs) {	/* heap chunks or populated mappings: no share of their own */
		pfs_an_fmt_bytes(req, sizeof(req), e->requested_bytes);
		fprintf(f, "allocated %s, touched %s (%s", req, tou,
			e->shared_allocs ? "on the shared heap" : "populated by the program");
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
