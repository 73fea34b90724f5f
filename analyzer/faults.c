/*
 * Exact mode's fault events: decoding (log_format.h, FAULTS) and
 * attribution.  A fault is charged to, in this order:
 *   1. the site that carved its heap page (CARVE, this process's or, for a
 *      forked child, its parents' up to the fork): heap pages belong to the
 *      block that first reached them, as in fast mode;
 *   2. the large allocation (ALLOC) whose pages covered it at the fault's
 *      time, replayed with FREE and REMAP in time order (a category's range,
 *      memory a pass found, never over a live allocation's pages);
 *   3. the [allocator] pseudo-site: malloc's own writes on pages no block
 *      covers.  Never lost.
 */
#include "faults.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int pfs_faults_decode(struct pfs_proc *p, const struct pfs_rec *rec, const char **why)
{
	const struct pfs_rec_faults *r = &rec->u.faults;
	const uint8_t *q = rec->items, *end = rec->items + rec->nitems;
	uint32_t psize = p->page_size ? p->page_size : 4096;
	struct pfs_fev_cursor c;

	pfs_fev_start(&c, r->time_ns, r->tid);
	p->fault_bytes += rec->h.size;
	if ((uint64_t)r->count * 2 > rec->nitems) { /* each event takes two bytes at least */
		*why = "FAULTS record counts more events than its bytes can hold";
		return -EINVAL;
	}
	if (pfs_an_reserve_big((void **)&p->faults, &p->faults_cap, p->nfaults + r->count, sizeof(*p->faults), 0))
		return -ENOMEM;
	for (uint32_t i = 0; i < r->count; i++) {
		struct pfs_fev ev;

		if (pfs_fev_decode(&q, end, &c, &ev))
			goto bad;
		p->faults[p->nfaults++] = (struct pfs_fault_ev){
			.time_ns = ev.time_ns, .addr = ev.page * psize, .pc = ev.pc, .tid = ev.tid,
			.sys = (int32_t)ev.sys,
			.flags = (uint8_t)(ev.flags | (rec->h.flags & PFS_FAULTS_AGAIN ? PFS_FAULT_AGAIN : 0)),
			.handler_ns = r->handler_ns / r->count,	/* the events of one handler cost alike */
		};
		p->fault_events++;
	}
	if (q != end) {
		*why = "FAULTS record holds more bytes than its events";
		return -EINVAL;
	}
	return 0;
bad:
	*why = "FAULTS event cut short or malformed (the events before it are kept)";
	return -EINVAL;
}

int pfs_faults_ureg(struct pfs_proc *p, const struct pfs_rec *rec)
{
	const struct pfs_rec_ureg *r = &rec->u.ureg;

	if (r->result) {
		p->unobservable_ranges++;
		p->unobservable_bytes += r->length;
	} else if (rec->h.flags & PFS_UREG_THP) {
		p->thp_registered_bytes += r->length;
	}
	return 0;
}

int pfs_faults_carve(struct pfs_proc *p, const struct pfs_rec *rec)
{
	const struct pfs_rec_carve *r = &rec->u.carve;

	if (!r->length || r->addr + r->length < r->addr)
		return 0;
	if (pfs_an_reserve((void **)&p->carves, &p->carves_cap, p->ncarves + 1, sizeof(*p->carves)))
		return -ENOMEM;
	p->carves[p->ncarves++] = (struct pfs_carve_ev){
		.seq = r->seq, .addr = r->addr, .end = r->addr + r->length, .stack = r->stack, .kind = r->kind,
	};
	return 0;
}

/* ---- attribution ------------------------------------------------------------ */

/* A live large allocation's pages, [start, end). */
struct ival {
	uint64_t start, end;
	uint64_t addr;		/* as allocated: FREE names it so */
	uint64_t seq;
	uint32_t stack;
	uint8_t kind;
};

struct ivals {
	struct ival *v;
	size_t n, cap;
	size_t hint;		/* the last hit: storms stay in one block */
};

/* The first interval ending after a. */
static size_t iv_lower(const struct ivals *s, uint64_t a)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->v[mid].end <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct ival *iv_find(struct ivals *s, uint64_t a)
{
	if (s->hint < s->n && s->v[s->hint].start <= a && a < s->v[s->hint].end)
		return &s->v[s->hint];
	size_t i = iv_lower(s, a);
	if (i < s->n && s->v[i].start <= a) {
		s->hint = i;
		return &s->v[i];
	}
	return NULL;
}

/* Removes [start, end) from every interval, keeping what lies outside.  0 or -ENOMEM. */
static int iv_cut(struct ivals *s, uint64_t start, uint64_t end)
{
	size_t i = iv_lower(s, start);
	while (i < s->n && s->v[i].start < end) {
		struct ival *v = &s->v[i];
		if (v->start < start && v->end > end) { /* a hole in the middle: split */
			if (pfs_an_reserve((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)))
				return -ENOMEM;
			v = &s->v[i];
			memmove(v + 1, v, (s->n - i) * sizeof(*v));
			s->n++;
			v[0].end = start;
			v[1].start = end;
			return 0;
		}
		if (v->start < start) {
			v->end = start;
			i++;
		} else if (v->end > end) {
			v->start = end;
			i++;
		} else {
			memmove(v, v + 1, (s->n - i - 1) * sizeof(*v));
			s->n--;
		}
	}
	s->hint = 0;
	return 0;
}

static int iv_add(struct ivals *s, const struct ival *nv)
{
	if (nv->start >= nv->end)
		return 0;
	/* Whatever it overlaps is stale (a free the log does not have). */
	if (iv_cut(s, nv->start, nv->end) ||
	    pfs_an_reserve((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v)))
		return -ENOMEM;
	size_t i = iv_lower(s, nv->start);
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i] = *nv;
	s->n++;
	s->hint = i;
	return 0;
}

/*
 * A category's range (memory a pass found that no hook had logged yet) takes
 * only what no live allocation holds: a pass that meets a block between its
 * mapping and the hook's record of it logs the mapping after the block, and
 * the shim's own region of the block replaces the pass's (fast.c add_region).
 * 0 or -ENOMEM.
 */
static int iv_add_category(struct ivals *s, const struct ival *nv)
{
	uint64_t at = nv->start;
	while (at < nv->end) {
		size_t i = iv_lower(s, at);
		while (i < s->n && s->v[i].start < nv->end && pfs_kind_is_category(s->v[i].kind))
			i++; /* another category's range: the newer one has it */
		uint64_t to = i < s->n && s->v[i].start < nv->end ? s->v[i].start : nv->end;
		if (to > at) {
			struct ival part = *nv;
			part.start = at;
			part.end = to;
			if (iv_add(s, &part))
				return -ENOMEM;
		}
		if (to >= nv->end)
			break;
		at = s->v[iv_lower(s, to)].end; /* past the allocation's range */
	}
	return 0;
}

static struct ival *iv_by_addr(struct ivals *s, uint64_t addr)
{
	size_t i = iv_lower(s, addr);
	for (size_t k = i; k < s->n && s->v[k].start <= addr + 1; k++)
		if (s->v[k].addr == addr)
			return &s->v[k];
	for (size_t k = i; k-- > 0 && k + 4 > i;)
		if (s->v[k].addr == addr)
			return &s->v[k];
	return NULL;
}

static int cmp_fault(const void *a, const void *b)
{
	const struct pfs_fault_ev *x = a, *y = b;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/*
 * When a block event takes effect: a forked child's record of what it
 * inherited covers those pages since the fork, not since the child wrote it
 * (the shim's set-up in the child faults on its own inherited memory first).
 */
static uint64_t ev_time(const struct pfs_block_ev *e)
{
	return e->type == PFS_REC_ALLOC && e->inherited ? 0 : e->time_ns;
}

static int cmp_ev_time(const void *a, const void *b)
{
	const struct pfs_block_ev *x = *(struct pfs_block_ev *const *)a, *y = *(struct pfs_block_ev *const *)b;
	if (ev_time(x) != ev_time(y))
		return ev_time(x) < ev_time(y) ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_carve(const void *a, const void *b)
{
	const struct pfs_carve_ev *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The carves that describe p's heaps: its own, and its fork parents' made before the fork. */
static int gather_carves(const struct pfs_proc *p, struct pfs_carve_ev **out, size_t *n)
{
	size_t cap = 0;
	uint64_t limit = UINT64_MAX;
	*out = NULL;
	*n = 0;
	for (const struct pfs_proc *q = p; q; limit = q->fork_seq, q = q->fork_parent) {
		for (size_t i = 0; i < q->ncarves; i++) {
			if (q->carves[i].seq >= limit)
				continue;
			if (pfs_an_reserve((void **)out, &cap, *n + 1, sizeof(**out)))
				return -ENOMEM;
			(*out)[(*n)++] = q->carves[i];
		}
	}
	if (*n)
		qsort(*out, *n, sizeof(**out), cmp_carve);
	return 0;
}

static const struct pfs_carve_ev *carve_find(const struct pfs_carve_ev *c, size_t n, uint64_t a)
{
	size_t lo = 0, hi = n;
	while (lo < hi) { /* the first carve starting after a */
		size_t mid = (lo + hi) / 2;
		if (c[mid].addr <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* The earliest carve covering a among the few that start at or before it. */
	const struct pfs_carve_ev *best = NULL;
	for (size_t k = lo; k-- > 0 && k + 8 > lo;)
		if (a < c[k].end && (!best || c[k].seq < best->seq))
			best = &c[k];
	return best;
}

static int apply_block_ev(struct ivals *live, const struct pfs_block_ev *e, uint64_t psize)
{
	uint64_t mask = psize - 1;
	if (e->type == PFS_REC_ALLOC) {
		struct ival v = {
			.start = e->addr & ~mask, .end = (e->addr + e->length + mask) & ~mask, .addr = e->addr,
			.seq = e->seq, .stack = e->stack, .kind = e->kind,
		};
		return pfs_kind_is_category(e->kind) ? iv_add_category(live, &v) : iv_add(live, &v);
	}
	if (e->type == PFS_REC_FREE) {
		if (e->length)
			return iv_cut(live, e->addr & ~mask, (e->addr + e->length + mask) & ~mask);
		struct ival *v = iv_by_addr(live, e->addr);
		return v ? iv_cut(live, v->start, v->end) : 0;
	}
	/* REMAP: the block at addr now lives at new_addr */
	const struct ival *v = iv_find(live, e->addr & ~mask);
	if (!v)
		return 0;
	struct ival moved = *v;
	moved.start = e->new_addr & ~mask;
	moved.end = (e->new_addr + e->new_length + mask) & ~mask;
	moved.addr = e->new_addr;
	if (iv_cut(live, v->start, v->end))
		return -ENOMEM;
	return iv_add(live, &moved);
}

#define TOUCH_BUCKET_NS 100000u
static uint64_t bucket_start; /* the time of the current touch event's first fault */
static struct pfs_site *last_site; /* storms stay at one site: skip the hash (reset per process) */

static int charge(struct pfs_proc *p, uint32_t stack, uint8_t kind, uint64_t alloc_seq,
		  const struct pfs_fault_ev *f)
{
	struct pfs_site *s = last_site;
	bool cow = f->flags & PFS_FEV_COW;
	uint32_t page = !(f->flags & PFS_FAULT_AGAIN); /* a thread's fault on a page another's made present: no page */

	if (!s || s->key.stack != stack || s->key.kind != kind)
		s = last_site = pfs_model_site_get(p, stack, kind);

	if (!s)
		return -ENOMEM;
	if (cow) {
		s->cow_faults++;
		s->cow_pages += page;
	} else {
		s->first_touch_faults++;
		s->first_touch_pages += page;
	}
	if (f->flags & PFS_FEV_SITE) {
		struct pfs_touch_pc_key key = {.pc = f->pc, .sys = f->sys};
		struct pfs_touch_pc *tp;

		HASH_FIND(hh, s->touch_pcs, &key, sizeof(key), tp);
		if (!tp) {
			tp = calloc(1, sizeof(*tp));
			if (!tp)
				return -ENOMEM;
			tp->key = key;
			HASH_ADD(hh, s->touch_pcs, key, sizeof(tp->key), tp);
		}
		tp->faults++;
	}
	/*
	 * Faults of one allocation within TOUCH_BUCKET_NS of the run's first
	 * make one touch event stamped with the last one's time, as a scan
	 * would have found them: a storm of a million faults costs the rate
	 * computations a few thousand events, and times stay within 100 us.
	 */
	if (p->ntouches) {
		struct pfs_touch_ev *last = &p->touches[p->ntouches - 1];

		if (last->stack == stack && last->kind == kind && last->alloc_seq == alloc_seq &&
		    last->cow == cow && f->time_ns >= last->time_ns && f->time_ns - bucket_start < TOUCH_BUCKET_NS &&
		    last->pages < UINT32_MAX) {
			last->pages += page;
			last->faults++;
			last->time_ns = f->time_ns;
			return 0;
		}
	}
	if (pfs_an_reserve_big((void **)&p->touches, &p->touches_cap, p->ntouches + 1, sizeof(*p->touches), 0))
		return -ENOMEM;
	p->touches[p->ntouches++] = (struct pfs_touch_ev){
		.time_ns = f->time_ns, .alloc_seq = alloc_seq, .stack = stack, .pages = page, .faults = 1, .kind = kind,
		.cow = cow,
	};
	bucket_start = f->time_ns;
	return 0;
}

static void warn_exact(struct pfs_proc *p, struct pfs_an_warnings *w)
{
	const char *cmd = p->command && *p->command ? p->command : "?";

	if (p->thp_registered_bytes)
		pfs_an_warn(w, "pid %" PRIu64 " (%s): exact mode registered %" PRIu64 " MiB that could have used"
			    " transparent huge pages; registration stops them, so its faults there are 4 KiB"
			    " faults that natively would have been fewer huge ones (fast mode keeps them)",
			    p->pid, cmd, p->thp_registered_bytes >> 20);
	if (p->unobservable_ranges)
		pfs_an_warn(w, "pid %" PRIu64 " (%s): %" PRIu64 " ranges (%" PRIu64 " KiB) could not be"
			    " registered with userfaultfd (file mappings and the like): their faults are not"
			    " counted", p->pid, cmd, p->unobservable_ranges, p->unobservable_bytes >> 10);
}

/* ---- the handlers' time out of the timeline ------------------------------------ */

/*
 * Exact mode keeps each faulting thread waiting while a handler reads,
 * resolves and logs its fault: the program runs slower than natively, its
 * storms longer and thinner.  Each event carries its share of the handler's
 * CPU time (FAULTS.handler_ns); every time of the process after a fault is
 * moved back by what the faults before it kept, so that storms and touch
 * times read as they would natively (docs/analyzer.md, "Storms").
 *
 * Threads faulting at once wait side by side, not one after the other: a
 * fault's time counts divided by the threads that faulted within the
 * millisecond before it.  A fault never removes more than the time to the
 * next one less a nanosecond, so that the order of all events is kept.
 */
#define CONCURRENT_NS 1000000u
#define CONCURRENT_MAX 64

struct tid_count {
	uint32_t tid, n;
};

static unsigned window_add(struct tid_count *w, unsigned *nw, uint32_t tid, int d)
{
	for (unsigned k = 0; k < *nw; k++)
		if (w[k].tid == tid) {
			w[k].n += (uint32_t)d;
			if (!w[k].n)
				w[k] = w[--*nw];
			return *nw;
		}
	if (d > 0 && *nw < CONCURRENT_MAX)
		w[(*nw)++] = (struct tid_count){tid, 1};
	return *nw;
}

/* A time moved back by the handler time before it: `cum` before fault i, `r` fault i's own. */
struct shift {
	uint64_t t;	/* fault i's original time */
	uint64_t cum;	/* removed before it */
	uint64_t r;	/* removed by it, just after it */
};

static uint64_t shift_time(const struct shift *sh, size_t n, uint64_t t)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {	/* the last fault at or before t */
		size_t mid = lo + (hi - lo) / 2;

		if (sh[mid].t <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return t;
	/*
	 * An event after the fault stays after it: at most the time since the fault
	 * less a nanosecond is removed (a FREE taken just after the block's last fault
	 * would otherwise meet it at the same time and free the block before it).
	 */
	const struct shift *s = &sh[lo - 1];
	uint64_t since = t - s->t;
	uint64_t d = s->cum + (since ? (since - 1 < s->r ? since - 1 : s->r) : 0);
	return t > d ? t - d : 0;
}

static int remove_handler_time(struct pfs_proc *p)
{
	struct tid_count win[CONCURRENT_MAX];
	unsigned nw = 0;
	struct shift *sh;
	uint64_t cum = 0;
	size_t first = 0;
	bool any = false;

	for (size_t i = 0; i < p->nfaults && !any; i++)
		any = p->faults[i].handler_ns != 0;
	if (!any)
		return 0;	/* an older log, or nothing kept */
	sh = malloc(p->nfaults * sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	for (size_t i = 0; i < p->nfaults; i++) {
		const struct pfs_fault_ev *f = &p->faults[i];
		uint64_t r, gap;
		unsigned threads;

		while (first < i && f->time_ns - p->faults[first].time_ns > CONCURRENT_NS)
			window_add(win, &nw, p->faults[first++].tid, -1);
		threads = window_add(win, &nw, f->tid, +1);
		r = f->handler_ns / (threads ? threads : 1);
		if (i + 1 < p->nfaults) {
			gap = p->faults[i + 1].time_ns - f->time_ns;
			if (r >= gap)
				r = gap ? gap - 1 : 0;
		}
		sh[i] = (struct shift){.t = f->time_ns, .cum = cum, .r = r};
		cum += r;
	}
	p->handler_ns_removed = cum;
	for (size_t i = 0; i < p->nfaults; i++)
		p->faults[i].time_ns -= sh[i].cum;
	for (size_t i = 0; i < p->nevs; i++)
		p->evs[i].time_ns = shift_time(sh, p->nfaults, p->evs[i].time_ns);
	for (size_t i = 0; i < p->nscan_evs; i++)
		p->scan_evs[i].time_ns = shift_time(sh, p->nfaults, p->scan_evs[i].time_ns);
	for (size_t i = 0; i < p->ntouches; i++)
		p->touches[i].time_ns = shift_time(sh, p->nfaults, p->touches[i].time_ns);
	if (p->end_ns)
		p->end_ns = shift_time(sh, p->nfaults, p->end_ns);
	free(sh);
	return 0;
}

int pfs_faults_attribute(struct pfs_proc *p, struct pfs_an_warnings *w)
{
	struct pfs_carve_ev *carves = NULL;
	const struct pfs_block_ev **evs = NULL;
	struct ivals live = {0};
	size_t ncarves = 0, nevs = 0;
	uint64_t psize = p->page_size ? p->page_size : 4096;
	int rc = 0;

	last_site = NULL;
	if (p->mode == PFS_MODE_EXACT)
		warn_exact(p, w);
	if (!p->nfaults)
		goto out;
	/* One handler writes them in time order; only pages malloc touched before registration interleave. */
	for (size_t i = 1; i < p->nfaults; i++)
		if (cmp_fault(&p->faults[i - 1], &p->faults[i]) > 0) {
			qsort(p->faults, p->nfaults, sizeof(*p->faults), cmp_fault);
			break;
		}
	rc = remove_handler_time(p);
	if (rc)
		goto out;
	rc = gather_carves(p, &carves, &ncarves);
	if (rc)
		goto out;
	evs = malloc((p->nevs ? p->nevs : 1) * sizeof(*evs));
	if (!evs) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < p->nevs; i++)
		evs[nevs++] = &p->evs[i];
	qsort(evs, nevs, sizeof(*evs), cmp_ev_time);

	size_t e = 0;
	for (size_t i = 0; i < p->nfaults && !rc; i++) {
		const struct pfs_fault_ev *f = &p->faults[i];
		const struct pfs_carve_ev *c;
		const struct ival *v;

		while (e < nevs && ev_time(evs[e]) <= f->time_ns && !rc)
			rc = apply_block_ev(&live, evs[e++], psize);
		if (rc)
			break;
		if ((c = carve_find(carves, ncarves, f->addr)) != NULL)
			rc = charge(p, c->stack, c->kind, 0, f);
		else if ((v = iv_find(&live, f->addr)) != NULL)
			rc = charge(p, v->stack, v->kind, v->seq, f);
		else {
			p->unattributed_faults++;
			rc = charge(p, PFS_STACK_ALLOCATOR, PFS_KIND_MALLOC, 0, f);
		}
	}
	if (!rc) { /* the events live on as touches */
		pfs_an_release(p->faults, p->faults_cap, sizeof(*p->faults));
		p->faults = NULL;
		p->nfaults = p->faults_cap = 0;
	}
out:
	free(carves);
	free(evs);
	free(live.v);
	return rc;
}
