/*
 * Fault storms: see storms.h, and docs/analyzer.md for the rule.
 *
 * A TOUCH record says "these pages were touched between the previous scan
 * pass and this one" (exact mode's events: "these faults came within
 * 100 us before this time").  Each record becomes an interval [a, b] (b its
 * time; a the latest bound known: the previous logged scan, the
 * allocation's own time, one scan interval before b when a scanner thread
 * ran), and its faults, and what they cost, are spread evenly over it.
 * Buckets of that spread give the rate and the share of time.
 */
#include "storms.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

/* One TOUCH record as an interval, times relative to the origin. */
struct iv {
	uint64_t a, b;
	struct pfs_site_key key;
	double cost;		/* ns, at the cost per fault of its kind */
	uint32_t faults;
	bool point;		/* a and b in one bucket: all of it goes to b's */
};

struct site_sum {
	struct pfs_site_key key;
	double faults, cost;
	UT_hash_handle hh;
};

void pfs_storms_defaults(struct pfs_storm_params *prm)
{
	*prm = (struct pfs_storm_params){
		.share = PFS_STORM_SHARE,
		.min_faults = PFS_STORM_MIN_FAULTS,
		.one_scan_faults = PFS_STORM_ONE_SCAN_FAULTS,
		.max_buckets = PFS_STORM_MAX_BUCKETS,
		.max_storms = PFS_STORM_MAX_STORMS,
	};
	pfs_faultcost_defaults(&prm->cost);
}

void pfs_storms_free(struct pfs_series *s)
{
	free(s->faults);
	free(s->cost);
	free(s->storms);
	memset(s, 0, sizeof(*s));
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static int cmp_iv_b(const void *x, const void *y)
{
	const struct iv *a = x, *b = y;

	return a->b < b->b ? -1 : a->b > b->b;
}

static bool ivs_sorted(const struct iv *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (v[i].b < v[i - 1].b)
			return false;
	return true;
}

static int cmp_scan_time(const void *x, const void *y)
{
	const struct pfs_scan_ev *a = x, *b = y;

	return a->time_ns < b->time_ns ? -1 : a->time_ns > b->time_ns;
}

static int cmp_storm(const void *x, const void *y)
{
	const struct pfs_storm *a = x, *b = y;

	if (a->faults != b->faults)
		return a->faults > b->faults ? -1 : 1;
	return a->start_ns < b->start_ns ? -1 : a->start_ns > b->start_ns;
}

static uint64_t rel(uint64_t t, uint64_t origin)
{
	return t > origin ? t - origin : 0;
}

/*
 * The scan interval, when a scanner thread ran: after a pass that found
 * touches the next pass is always logged, so the gaps from such a pass to
 * a periodic one are the interval.  A single-threaded program's periodic
 * passes come at its allocator calls, later than the interval: the median
 * of at least three gaps, and only if they agree within 25%.
 */
static uint64_t scan_interval(const struct pfs_scan_ev *sc, size_t n)
{
	uint64_t *gaps, est = 0;
	size_t ng = 0;

	if (n < 4)
		return 0;
	gaps = malloc(n * sizeof(*gaps));
	if (!gaps)
		return 0;	/* only a refinement: do without */
	for (size_t i = 1; i < n; i++)
		if (sc[i - 1].new_pages && sc[i].reason == PFS_SCAN_PERIODIC &&
		    sc[i].time_ns > sc[i - 1].time_ns)
			gaps[ng++] = sc[i].time_ns - sc[i - 1].time_ns;
	if (ng >= 3) {
		qsort(gaps, ng, sizeof(*gaps), cmp_u64);
		est = gaps[ng / 2];
		if (gaps[ng / 4] < est - est / 4 || gaps[(3 * ng) / 4] > est + est / 4)
			est = 0;
	}
	free(gaps);
	return est;
}

/*
 * The ALLOC time of `seq` (evs are sorted by seq after finish); 0 unknown.
 * Millions of TOUCH records name a few thousand allocations: a small
 * direct-mapped cache saves most of the searches.
 */
#define ALLOC_CACHE 4096

struct alloc_cache {
	uint64_t seq[ALLOC_CACHE];	/* 0: empty (seq 0 is never looked up) */
	uint64_t time[ALLOC_CACHE];
};

static uint64_t alloc_time_search(const struct pfs_proc *p, uint64_t seq)
{
	size_t lo = 0, hi = p->nevs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->evs[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < p->nevs && p->evs[lo].seq == seq; lo++)
		if (p->evs[lo].type == PFS_REC_ALLOC)
			return p->evs[lo].time_ns;
	return 0;
}

static uint64_t alloc_time(const struct pfs_proc *p, struct alloc_cache *c, uint64_t seq)
{
	size_t slot = (size_t)(seq % ALLOC_CACHE);

	if (c->seq[slot] != seq) {
		c->seq[slot] = seq;
		c->time[slot] = alloc_time_search(p, seq);
	}
	return c->time[slot];
}

/*
 * The latest scan time strictly before t (0 none), through a cursor into
 * the sorted times: the records come in time order (but for a few threads'
 * buffers), so the cursor mostly steps forward; a step back or a long
 * jump searches.  One event per fault (exact mode) makes as many times as
 * events, and this keeps them linear.
 */
struct time_cursor {
	const uint64_t *times;
	size_t n;
	size_t pos;		/* times[0..pos) are < last */
	uint64_t last;
};

/* The first index in [lo, hi) of sorted v whose value is >= t (hi if none). */
static size_t lower_bound(const uint64_t *v, size_t lo, size_t hi, uint64_t t)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t scan_before(struct time_cursor *c, uint64_t t)
{
	size_t pos = c->pos;

	if (t >= c->last) {
		/* forward: a few steps, then a search of what is left */
		for (int k = 0; k < 16 && pos < c->n && c->times[pos] < t; k++)
			pos++;
		if (pos < c->n && c->times[pos] < t)
			pos = lower_bound(c->times, pos, c->n, t);
	} else {
		pos = lower_bound(c->times, 0, pos, t);
	}
	c->pos = pos;
	c->last = t;
	return pos ? c->times[pos - 1] : 0;
}

static bool sorted_u64(const uint64_t *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (v[i] < v[i - 1])
			return false;
	return true;
}

/*
 * Each touch's interval into ivs[i]; or, with ivs NULL, only its bounds into
 * lo[i] and hi[i] (the evidence needs no more: 10 million touches' intervals
 * were 480 MB of fresh memory, zeroed by the kernel, for 160).
 */
static int make_intervals(const struct pfs_proc *p, const struct pfs_series *s,
			  struct iv *ivs, uint64_t *lo, uint64_t *hi, uint64_t *span)
{
	struct alloc_cache *cache;
	struct time_cursor cur = {0};
	uint64_t *times;
	size_t nt = 0;

	times = pfs_an_zalloc(p->nscan_evs + p->ntouches + 1, sizeof(*times));
	cache = calloc(1, sizeof(*cache));
	if (!times || !cache) {
		pfs_an_release(times, p->nscan_evs + p->ntouches + 1, sizeof(*times));
		free(cache);
		return -ENOMEM;
	}
	/*
	 * A TOUCH stands for the pass that found it, even if its SCAN was lost.
	 * The records of one pass share its time: repeats in a row are left
	 * out, so there are about as many times as passes to sort and search.
	 */
	for (size_t i = 0; i < p->nscan_evs; i++)
		if (p->scan_evs[i].reason != PFS_SCAN_SAMPLE)
			times[nt++] = p->scan_evs[i].time_ns;
	for (size_t i = 0; i < p->ntouches; i++)
		if (!nt || times[nt - 1] != p->touches[i].time_ns)
			times[nt++] = p->touches[i].time_ns;
	if (!sorted_u64(times, nt))
		qsort(times, nt, sizeof(*times), cmp_u64);
	cur.times = times;
	cur.n = nt;
	*span = 0;
	if (p->end_ns)
		*span = rel(p->end_ns, s->origin_ns);
	if (nt && rel(times[nt - 1], s->origin_ns) > *span)
		*span = rel(times[nt - 1], s->origin_ns);
	for (size_t i = 0; i < p->ntouches; i++) {
		const struct pfs_touch_ev *t = &p->touches[i];
		uint64_t b = t->time_ns, a = scan_before(&cur, b), at;
		uint32_t f = t->faults ? t->faults : t->pages;	/* logs before the field: one per page */
		/* a huge page is one fault for 512 pages: f = huge + base, pages = 512 huge + base */
		uint64_t huge = t->pages > f ? (t->pages - f) / 511 : 0;
		double cost;

		if (huge > f)
			huge = f;
		cost = t->cow ? f * s->unit.cow_ns
			      : (double)huge * s->unit.huge_ns + (double)(f - huge) * s->unit.first_touch_ns;

		if (a < s->origin_ns)
			a = s->origin_ns;
		if (t->alloc_seq && (at = alloc_time(p, cache, t->alloc_seq)) > a && at <= b)
			a = at;
		if (s->scan_interval_ns && b > s->scan_interval_ns && b - s->scan_interval_ns > a)
			a = b - s->scan_interval_ns;
		if (a > b)
			a = b;
		if (t->kind == PFS_KIND_SELF)	/* the shim's own memory: apart, as in the totals */
			f = 0, cost = 0;
		if (!ivs) {
			lo[i] = rel(a, s->origin_ns);
			hi[i] = rel(b, s->origin_ns);
			continue;
		}
		ivs[i] = (struct iv){.a = rel(a, s->origin_ns), .b = rel(b, s->origin_ns),
				     .faults = f, .cost = cost, .key = {t->stack, t->kind}};
		ivs[i].point = ivs[i].a / s->bucket_ns == ivs[i].b / s->bucket_ns;
	}
	pfs_an_release(times, p->nscan_evs + p->ntouches + 1, sizeof(*times));
	free(cache);
	return 0;
}

/* Spreads x over the buckets [v->a, v->b] touches, evenly (a running sum in diff). */
static void spread_one(const struct iv *v, uint64_t B, double x, double *into, double *diff)
{
	size_t ia = v->a / B, ib = v->b / B;

	if (v->point) {
		into[ib] += x;
		return;
	}
	double d = x / (double)(v->b - v->a);

	into[ia] += d * ((double)(ia + 1) * (double)B - (double)v->a);
	into[ib] += d * ((double)v->b - (double)ib * (double)B);
	if (ib > ia + 1) {
		diff[ia + 1] += d * (double)B;
		diff[ib] -= d * (double)B;
	}
}

/* Spread every interval's faults and cost over the buckets; mark the one-record storms. */
static void spread(struct pfs_series *s, const struct iv *ivs, size_t n, double *diff, double *cdiff,
		   int64_t *forced, double one_scan_cost)
{
	const uint64_t B = s->bucket_ns;

	for (size_t i = 0; i < n; i++) {
		const struct iv *v = &ivs[i];

		spread_one(v, B, (double)v->faults, s->faults, diff);
		spread_one(v, B, v->cost, s->cost, cdiff);
		if (v->cost >= one_scan_cost) {
			forced[v->point ? v->b / B : v->a / B]++;
			forced[v->b / B + 1]--;
		}
	}
	for (size_t i = 0; i < s->nbuckets; i++) {
		if (i) {
			diff[i] += diff[i - 1];
			cdiff[i] += cdiff[i - 1];
			forced[i] += forced[i - 1];
		}
		s->faults[i] += diff[i];
		s->cost[i] += cdiff[i];
	}
}

/*
 * A time computed in double back to nanoseconds: a time near 2^64 (a
 * corrupt log's) rounds up to 2^64, which no uint64_t holds (UBSan).
 */
static uint64_t ns_of(double v)
{
	if (!(v > 0))
		return 0;
	return v >= 0x1p64 ? UINT64_MAX : (uint64_t)v;
}

/* The share of v inside [lo, hi), and where it lies there. */
static double part_in(const struct iv *v, double lo, double hi, double *from, double *to)
{
	double a = (double)v->a, b = (double)v->b, ov;

	if (v->point) {
		*from = *to = b;
		return b < lo || b >= hi ? 0.0 : 1.0;
	}
	ov = fmin(b, hi) - fmax(a, lo);
	*from = fmax(a, lo);
	*to = fmin(b, hi);
	return ov <= 0 ? 0.0 : ov / (b - a);
}

/* A record's part of a storm: where it lies there, and what it cost. */
struct piece {
	double from, cost;
};

/*
 * The smallest `from` by which the pieces' costs add up to more than
 * `share`, by selection in place (no sort).  Unchanged when no piece gets
 * there.
 */
static void weighted_first(struct piece *pc, size_t np, double share, double *first)
{
	size_t lo = 0, hi = np;

	while (lo < hi) {
		double pivot = pc[lo + (hi - lo) / 2].from, less = 0, same = 0;
		size_t lt = lo, gt = hi;

		/* [lo, lt) < pivot, [lt, i) == pivot, [gt, hi) > pivot */
		for (size_t i = lo; i < gt;) {
			struct piece t = pc[i];

			if (t.from < pivot) {
				pc[i++] = pc[lt];
				pc[lt++] = t;
				less += t.cost;
			} else if (t.from > pivot) {
				pc[i] = pc[--gt];
				pc[gt] = t;
			} else {
				i++;
				same += t.cost;
			}
		}
		if (less > share) {
			hi = lt;
		} else if (less + same > share) {
			*first = pivot;
			return;
		} else {
			share -= less + same;
			lo = gt;
		}
	}
}

#define TIGHT_BINS 4096

/*
 * The storm's start and end made tight: the 1% of its cost that came
 * earliest and the 1% that came latest left out (a few pages known only to
 * have come "since the start" must not stretch a storm to the start).  By
 * the records' sum, not each record's own share: a storm of 170 scans of
 * 0.6% each was shrunk to its last one, the only one above 1%.  Records
 * ivs[k0, k1) are the storm's, `total` their cost in [lo, hi).  Without a
 * copy of them: a storm of a whole run is millions of records, and two
 * sorts of their copies were most of a report's time and a quarter of its
 * memory.  The end: their ends come in order (ivs are sorted by b), so a
 * walk back from the last.  The start: the costs by where they start in
 * TIGHT_BINS bins of the storm, then the records of the bin where 1% is
 * passed, selected exactly.  0 or -ENOMEM.
 */
static int tighten(const struct iv *ivs, size_t k0, size_t k1, double lo, double hi, double total,
		   double *first, double *last)
{
	const double share = total / 100, width = (hi - lo) / TIGHT_BINS;
	double acc = 0, from, to, *bins;
	struct piece *pc = NULL;
	size_t np = 0, cap = 0, j;

	for (size_t k = k1; k-- > k0;) {
		double part = part_in(&ivs[k], lo, hi, &from, &to);

		if (part > 0 && (acc += part * ivs[k].cost) > share) {
			*last = to;
			break;
		}
	}
	if (!(width > 0))
		return 0;
	bins = calloc(TIGHT_BINS, sizeof(*bins));
	if (!bins)
		return -ENOMEM;
#define BIN_OF(f) ((size_t)fmin(fmax(((f) - lo) / width, 0.0), (double)(TIGHT_BINS - 1)))
	for (size_t k = k0; k < k1; k++) {
		double part = part_in(&ivs[k], lo, hi, &from, &to);

		if (part > 0)
			bins[BIN_OF(from)] += part * ivs[k].cost;
	}
	acc = 0;
	for (j = 0; j < TIGHT_BINS && acc + bins[j] <= share; j++)
		acc += bins[j];
	free(bins);
	if (j == TIGHT_BINS)
		return 0;
	for (size_t k = k0; k < k1; k++) {
		double part = part_in(&ivs[k], lo, hi, &from, &to);

		if (part <= 0 || BIN_OF(from) != j)
			continue;
		if (pfs_an_reserve((void **)&pc, &cap, np + 1, sizeof(*pc))) {
			free(pc);
			return -ENOMEM;
		}
		pc[np++] = (struct piece){from, part * ivs[k].cost};
	}
#undef BIN_OF
	weighted_first(pc, np, share - acc, first);
	free(pc);
	return 0;
}

/*
 * Faults and cost of each site inside storm [i0, i1] of buckets, the top
 * site (the one whose faults cost the most there), the storm's start and
 * end made tight (tighten), and whether it is one record's (half its cost
 * or more: its pages came at an unknown time inside that record's span).
 */
static int attribute(struct pfs_series *s, const struct iv *ivs, size_t n, uint64_t maxlen,
		     struct pfs_storm *st, size_t i0, size_t i1)
{
	const double B = (double)s->bucket_ns;
	double lo = (double)i0 * B, hi = (double)(i1 + 1) * B, best = -1.0, total = 0, biggest = 0;
	double first = hi, last = lo, from, to;
	struct site_sum *sums = NULL, *e, *tmp;
	size_t k0 = 0, hiwin = n, k1;
	int rc = 0;

	/* ivs sorted by b: skip those that end before the storm */
	while (k0 < hiwin) {
		size_t mid = k0 + (hiwin - k0) / 2;

		if ((double)ivs[mid].b < lo)
			k0 = mid + 1;
		else
			hiwin = mid;
	}
	for (k1 = k0; k1 < n && (double)ivs[k1].b < hi + (double)maxlen + B; k1++) {
		const struct iv *v = &ivs[k1];
		double part = part_in(v, lo, hi, &from, &to);

		if (part <= 0)
			continue;
		total += part * v->cost;
		biggest = fmax(biggest, part * v->cost);
		HASH_FIND(hh, sums, &v->key, sizeof(v->key), e);
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e) {
				rc = -ENOMEM;
				goto out;
			}
			e->key = v->key;
			HASH_ADD(hh, sums, key, sizeof(e->key), e);
		}
		e->faults += part * v->faults;
		e->cost += part * v->cost;
	}
	rc = tighten(ivs, k0, k1, lo, hi, total, &first, &last);
	if (rc)
		goto out;
	st->one_scan = st->one_scan && biggest >= total / 2;
	HASH_ITER(hh, sums, e, tmp) {
		if (e->cost > best || (e->cost == best &&
		    (e->key.stack < st->top.stack ||
		     (e->key.stack == st->top.stack && e->key.kind < st->top.kind)))) {
			best = e->cost;
			st->top = e->key;
			st->top_faults = (uint64_t)llround(e->faults);
		}
	}
	if (first > last) {
		first = lo;
		last = hi;
	}
	st->start_ns = ns_of(first);
	st->end_ns = ns_of(last);
out:
	HASH_ITER(hh, sums, e, tmp) {
		HASH_DEL(sums, e);
		free(e);
	}
	return rc;
}

int pfs_storms_touch_bounds(const struct pfs_proc *p, const struct pfs_series *s,
			    uint64_t *lo, uint64_t *hi)
{
	uint64_t span;

	return make_intervals(p, s, NULL, lo, hi, &span);
}

/*
 * Bucket k is stormy: its faults took the rule's share of the time the
 * program did not wait for a CPU in it (own[k]; the bucket on a quiet
 * machine), or a one-record storm lies on it.
 */
static bool stormy_at(const struct pfs_series *out, const int64_t *forced, const double *own, double share, size_t k)
{
	return forced[k] > 0 || out->cost[k] >= share * own[k];
}

/*
 * Bucket j is not stormy: does a stormy one follow within one bucket of the
 * program's own time (a storm the scheduler interrupted is one storm)?
 */
static bool storm_goes_on(const struct pfs_series *out, const int64_t *forced, const double *own, double share,
			  size_t j)
{
	double gap = 0;
	for (size_t k = j; k < out->nbuckets; k++) {
		if (stormy_at(out, forced, own, share, k))
			return true;
		gap += own[k];
		if (gap > (double)out->bucket_ns)
			return false;
	}
	return false;
}

int pfs_storms_compute(const struct pfs_proc *p, const struct pfs_storm_params *prm,
		       struct pfs_series *out)
{
	struct pfs_storm_params def;
	struct pfs_scan_ev *sc = NULL;
	struct iv *ivs = NULL;
	double *diff = NULL, *cdiff = NULL, *sorted = NULL, *own = NULL, min_cost;
	int64_t *forced = NULL;
	uint64_t span, maxlen = 0;
	size_t cap = 0;
	int rc = -ENOMEM;

	if (!prm) {
		pfs_storms_defaults(&def);
		prm = &def;
	}
	memset(out, 0, sizeof(*out));
	out->origin_ns = p->start_ns;
	out->unit = prm->cost;
	out->share = prm->share;
	/* 0: not known (a model built by hand) */
	out->unwaited_share = p->unwaited_share > 0 ? fmin(1.0, fmax(0.01, p->unwaited_share)) : 1;
	out->handler_ns_removed = p->handler_ns_removed;
	if (p->nscan_evs) {
		sc = malloc(p->nscan_evs * sizeof(*sc));
		if (!sc)
			goto out;
		memcpy(sc, p->scan_evs, p->nscan_evs * sizeof(*sc));
		qsort(sc, p->nscan_evs, sizeof(*sc), cmp_scan_time);
		out->scan_interval_ns = scan_interval(sc, p->nscan_evs);
	}
	out->bucket_ns = prm->bucket_ns;
	if (!out->bucket_ns) {
		out->bucket_ns = out->scan_interval_ns ? out->scan_interval_ns
						       : PFS_STORM_DEFAULT_BUCKET_NS;
		/* 1 ms .. 1 s: finer than a millisecond is noise, coarser hides storms */
		if (out->bucket_ns < 1000000)
			out->bucket_ns = 1000000;
		if (out->bucket_ns > 1000000000)
			out->bucket_ns = 1000000000;
	}
	ivs = pfs_an_zalloc(p->ntouches + 1, sizeof(*ivs));
	if (!ivs)
		goto out;
	/* a first pass with the bucket as it is, to learn the span */
	rc = make_intervals(p, out, ivs, NULL, NULL, &span);
	if (rc)
		goto out;
	rc = -ENOMEM;
	if (prm->max_buckets && span / out->bucket_ns >= prm->max_buckets) {
		out->bucket_ns = span / prm->max_buckets + 1;
		for (size_t i = 0; i < p->ntouches; i++)
			ivs[i].point = ivs[i].a / out->bucket_ns == ivs[i].b / out->bucket_ns;
	}
	out->nbuckets = (size_t)(span / out->bucket_ns) + 1;
	out->faults = calloc(out->nbuckets, sizeof(*out->faults));
	out->cost = calloc(out->nbuckets, sizeof(*out->cost));
	diff = calloc(out->nbuckets + 1, sizeof(*diff));
	cdiff = calloc(out->nbuckets + 1, sizeof(*cdiff));
	forced = calloc(out->nbuckets + 2, sizeof(*forced));
	sorted = malloc(out->nbuckets * sizeof(*sorted));
	if (!out->faults || !out->cost || !diff || !cdiff || !forced || !sorted)
		goto out;
	spread(out, ivs, p->ntouches, diff, cdiff, forced,
	       (double)prm->one_scan_faults * prm->cost.first_touch_ns);
	for (size_t i = 0; i < p->ntouches; i++) {
		out->total_faults += ivs[i].faults;
		if (ivs[i].b - ivs[i].a > maxlen)
			maxlen = ivs[i].b - ivs[i].a;
	}
	memcpy(sorted, out->faults, out->nbuckets * sizeof(*sorted));
	qsort(sorted, out->nbuckets, sizeof(*sorted), cmp_double);
	out->median_rate = sorted[out->nbuckets / 2] * 1e9 / (double)out->bucket_ns;
	/*
	 * The share is of the time the program did not wait for a CPU (on a
	 * loaded machine less than the wall time), bucket by bucket from the
	 * main thread's waits; rates are per second of that time.
	 */
	out->threshold = prm->share * 1e9 / prm->cost.first_touch_ns;
	own = malloc(out->nbuckets * sizeof(*own));
	if (!own)
		goto out;
	for (size_t k = 0; k < out->nbuckets; k++)
		own[k] = (double)pfs_model_unwaited_ns(p, k * out->bucket_ns, (k + 1) * out->bucket_ns);
	min_cost = (double)prm->min_faults * prm->cost.first_touch_ns;

	/*
	 * candidates: maximal runs of stormy buckets (or inside a one-record
	 * storm), through gaps of one bucket of the program's own time
	 */
#define STORMY(k) stormy_at(out, forced, own, prm->share, (k))
	for (size_t i = 0; i < out->nbuckets;) {
		double sum = 0, cost = 0;
		size_t j = i;
		bool one = false;

		while (j < out->nbuckets && (STORMY(j) || (j > i && storm_goes_on(out, forced, own, prm->share, j)))) {
			sum += out->faults[j];
			cost += out->cost[j];
			one |= forced[j] > 0;
			j++;
		}
		if (j == i) {
			i++;
			continue;
		}
		if (cost >= min_cost && llround(sum) > 0) {
			if (pfs_an_reserve((void **)&out->storms, &cap, out->nstorms + 1,
					    sizeof(*out->storms)))
				goto out;
			out->storms[out->nstorms++] = (struct pfs_storm){
				/* bucket range for now; attribute() makes it tight */
				.start_ns = i, .end_ns = j - 1, .faults = (uint64_t)llround(sum),
				.fault_ns = cost, .one_scan = one, .top_index = SIZE_MAX,
			};
		}
		i = j;
	}
#undef STORMY
	if (!out->nstorms) {
		rc = 0;
		goto out;
	}
	qsort(out->storms, out->nstorms, sizeof(*out->storms), cmp_storm);
	if (prm->max_storms && out->nstorms > prm->max_storms)
		out->nstorms = prm->max_storms;
	/* records come in time order but for a few threads' buffers: mostly sorted already */
	if (!ivs_sorted(ivs, p->ntouches))
		qsort(ivs, p->ntouches, sizeof(*ivs), cmp_iv_b);
	for (size_t i = 0; i < out->nstorms; i++) {
		struct pfs_storm *st = &out->storms[i];

		rc = attribute(out, ivs, p->ntouches, maxlen, st, st->start_ns, st->end_ns);
		if (rc)
			goto out;
		/* all in one instant: the bucket is the finest time we have */
		uint64_t to = st->end_ns - st->start_ns < 1000 ? st->start_ns + out->bucket_ns : st->end_ns;
		double own = (double)pfs_model_unwaited_ns(p, st->start_ns, to);
		st->rate = (double)st->faults * 1e9 / own;
		st->share = fmin(1.0, st->fault_ns / own);
	}
	qsort(out->storms, out->nstorms, sizeof(*out->storms), cmp_storm);
	rc = 0;
out:
	free(sc);
	pfs_an_release(ivs, p->ntouches + 1, sizeof(*ivs));
	free(diff);
	free(cdiff);
	free(forced);
	free(sorted);
	free(own);
	if (rc)
		pfs_storms_free(out);
	return rc;
}
