/* Fast mode's regions and their scans (regions.h). */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "arena.h"
#include "kcompat.h"
#include "pagemap.h"
#include "regions.h"
#include "sites.h"

/*
 * A mutex, not a spinlock: the scanner holds it for a whole pass of ioctls.
 * Taken by hooks (free, munmap, madvise) and the scanner; never while
 * holding another shim lock except the heaps' (heap.c comes before it in
 * the fork order, core.c), the log's and the arena's, which come after.
 */
static pthread_mutex_t regions_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct region **table; /* by start */
static uint64_t nregions, table_cap;
static uint64_t first_touches, cow_faults; /* atomic: faults as the kernel takes them */

/*
 * Ranges per PAGEMAP_SCAN call.  After a fork with scattered writes a region
 * is thousands of ranges: 128 made a 1 GiB region's scan ~600 calls
 * (measured); one static vector (every scan holds regions_mutex) of 4096
 * makes it ~20.
 */
#define SCAN_VEC 4096
static struct page_region scan_vec[SCAN_VEC];
#define HUGE_PAGES 512u /* base pages in a transparent huge page (x86-64: 2 MiB) */

static uint64_t page_size(void)
{
	return pfs_proc.page_size ? pfs_proc.page_size : 4096;
}

void pfs_regions_lock(void)
{
	pthread_mutex_lock(&regions_mutex);
}

void pfs_regions_unlock(void)
{
	pthread_mutex_unlock(&regions_mutex);
}

void pfs_regions_child(void)
{
	/* as pthread_mutex_init would, without a page of libc's code to fault in (a forked child's set-up) */
	regions_mutex = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	first_touches = cow_faults = 0;
}

void pfs_regions_counts(uint64_t *first, uint64_t *cow)
{
	*first = __atomic_load_n(&first_touches, __ATOMIC_RELAXED);
	*cow = __atomic_load_n(&cow_faults, __ATOMIC_RELAXED);
}

/* ---- the table ------------------------------------------------------------ */

uint64_t pfs_region_end(const struct region *r)
{
	return r->start + r->npages * page_size();
}

uint64_t pfs_regions_count(void)
{
	return nregions;
}

struct region *pfs_region_at(uint64_t i)
{
	return table[i];
}

/* The first index whose region starts at or after addr. */
static uint64_t first_starting(uint64_t addr)
{
	uint64_t lo = 0, hi = nregions;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (table[mid]->start < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t pfs_regions_from(uint64_t addr)
{
	uint64_t i = first_starting(addr);
	/* A region that starts before addr may still reach past it (regions do not overlap, heaps aside). */
	while (i > 0 && pfs_region_end(table[i - 1]) > addr)
		i--;
	return i;
}

struct region *pfs_region_starting(uint64_t addr)
{
	uint64_t start = addr & ~(page_size() - 1), i = first_starting(start);
	return i < nregions && table[i]->start == start ? table[i] : NULL;
}

struct region *pfs_region_holding(uint64_t addr)
{
	for (uint64_t i = pfs_regions_from(addr); i < nregions; i++) {
		struct region *r = table[i];
		if (r->start > addr)
			break;
		if (addr < pfs_region_end(r))
			return r;
	}
	return NULL;
}

struct region *pfs_region_new(uint64_t start, uint64_t npages, uint64_t alloc_seq, uint32_t stack, int kind,
			      unsigned mem)
{
	if (nregions == table_cap) {
		uint64_t cap = table_cap ? table_cap * 2 : 256;
		struct region **t = pfs_pool_alloc(cap * sizeof(*t));
		if (!t)
			return NULL;
		if (nregions)
			memcpy(t, table, nregions * sizeof(*t));
		pfs_pool_free(table, table_cap * sizeof(*table));
		table = t;
		table_cap = cap;
	}
	struct region *r = pfs_pool_alloc(sizeof(*r));
	if (!r)
		return NULL;
	r->cap = npages ? npages : 64; /* a heap, grown as it is carved */
	if (pfs_bits_init(&r->bits, r->cap)) {
		pfs_pool_free(r, sizeof(*r));
		return NULL;
	}
	r->start = start;
	r->npages = npages;
	r->alloc_seq = alloc_seq;
	r->stack = stack;
	r->kind = (uint8_t)kind;
	r->cowable = (mem & PFS_MEM_COWABLE) != 0;
	/* the events' count, where there is one, over fast mode's estimate */
	r->around = (uint8_t)(mem & PFS_MEM_EVENT_FAULTS ? PFS_MEM_EVENT_FAULTS : mem & PFS_MEM_READ_AROUND);
	uint64_t i = first_starting(start);
	memmove(&table[i + 1], &table[i], (nregions - i) * sizeof(*table));
	table[i] = r;
	nregions++;
	return r;
}

void pfs_region_free(struct region *r)
{
	uint64_t i = first_starting(r->start);
	while (i < nregions && table[i] != r)
		i++;
	if (i < nregions) {
		memmove(&table[i], &table[i + 1], (nregions - i - 1) * sizeof(*table));
		nregions--;
	}
	pfs_bits_free(&r->bits);
	pfs_region_cow_free(r);
	pfs_pool_free(r->owner, r->cap * sizeof(*r->owner));
	pfs_pool_free(r, sizeof(*r));
}

/*
 * In a forked child r->cow points at memory the fork wiped: all zeros, an
 * empty bitmap of no pages that nothing reads as set.  It is made again
 * where it lies, the child's own from then on (its pool hands out nothing
 * below where the parent had got to): writing r->cow instead would copy
 * the region's page in the child.
 */
struct pfs_cow *pfs_region_cow(struct region *r)
{
	if (r->cow && r->cow->bits.per_fork)
		return r->cow;
	struct pfs_cow *c = r->cow ? r->cow : pfs_forkpool_alloc(sizeof(*c));
	if (!c || pfs_bits_init_per_fork(&c->bits, r->cap)) {
		if (!r->cow)
			pfs_forkpool_free(c, sizeof(*c));
		return NULL;
	}
	c->left = c->wp_gen = c->reg_pages = 0;
	if (r->cow != c)
		r->cow = c;
	return c;
}

uint64_t pfs_region_cow_left(const struct region *r)
{
	return r->cow ? r->cow->left : 0;
}

void pfs_region_cow_free(struct region *r)
{
	if (!r->cow)
		return;
	pfs_bits_free(&r->cow->bits);
	pfs_forkpool_free(r->cow, sizeof(*r->cow));
	r->cow = NULL;
}

int pfs_region_grow(struct region *r, uint64_t pages)
{
	if (pages <= r->cap)
		return 0;
	uint64_t cap = r->cap * 2 > pages ? r->cap * 2 : pages;
	struct owner *owner = r->owner ? pfs_pool_alloc(cap * sizeof(*owner)) : NULL;
	if ((r->owner && !owner) || pfs_bits_grow(&r->bits, cap) || (r->cow && r->cow->bits.per_fork && pfs_bits_grow(&r->cow->bits, cap))) {
		pfs_pool_free(owner, cap * sizeof(*owner));
		return -ENOMEM; /* a bitmap grown already stays grown: harmless */
	}
	if (owner) {
		memcpy(owner, r->owner, r->cap * sizeof(*owner));
		pfs_pool_free(r->owner, r->cap * sizeof(*owner));
		r->owner = owner;
	}
	r->cap = cap;
	return 0;
}

/* ---- counting ------------------------------------------------------------- */

static void write_touch(struct pfs_thread *t, uint64_t alloc_seq, uint32_t stack, int kind, uint64_t pages,
			uint64_t faults, uint64_t now, uint16_t flags)
{
	pfs_stack_used(t, stack);
	struct pfs_rec_touch *rec = t ? pfs_rec_begin(&t->w, sizeof(*rec)) : NULL;
	__atomic_add_fetch(flags & PFS_TOUCH_COW ? &cow_faults : &first_touches, faults, __ATOMIC_RELAXED);
	if (!rec)
		return;
	rec->time_ns = now;
	rec->alloc_seq = alloc_seq;
	rec->stack = stack;
	rec->pages = pages > UINT32_MAX ? UINT32_MAX : (uint32_t)pages;
	rec->faults = faults > UINT32_MAX ? UINT32_MAX : (uint32_t)faults;
	rec->kind = (uint8_t)kind;
	pfs_rec_end(rec, PFS_REC_TOUCH, flags | PFS_TOUCH_FAULTS, sizeof(*rec));
}

/*
 * One region's reading in progress.  `t` NULL: a baseline.  Pages of a heap
 * are charged to the site that carved each one, in runs of the same owner;
 * a whole region's are added up and written at the end.
 */
struct scan_ctx {
	struct pfs_thread *t;
	uint64_t now;
	uint64_t cursor;		/* page index: the bitmap is settled below it */
	uint64_t pages, faults;		/* first touches of the whole region (not heaps) */
	uint64_t copies;		/* copies of the whole region (not heaps): a page, a fault */
	const struct owner *run;	/* heap: the owner of the pending run */
	uint16_t run_flags;		/* of the pending run: 0 or PFS_TOUCH_COW */
	uint64_t run_pages, run_faults;
	int huge;			/* a held range is a transparent huge page */
};

static void run_flush(struct scan_ctx *c)
{
	/* a page no site carved: the unknown site's, or its extent's category (memory from before the shim) */
	int keep = c->run && (c->run->stack || pfs_kind_is_category(c->run->kind));
	if (c->run_pages && c->t)
		write_touch(c->t, 0, keep ? c->run->stack : pfs_stacks_unknown(c->t),
			    keep ? c->run->kind : PFS_KIND_MALLOC, c->run_pages, c->run_faults, c->now, c->run_flags);
	c->run_pages = c->run_faults = 0;
	c->run = NULL;
}

/* Page i counted, as `fault` faults (1, or 0 for the rest of a huge page after its first); flags PFS_TOUCH_COW: a copy. */
static void count_page(struct scan_ctx *c, struct region *r, uint64_t i, unsigned fault, uint16_t flags)
{
	if (flags)
		c->copies++;
	else
		c->pages++, c->faults += fault;
	if (!r->owner)
		return;
	const struct owner *o = &r->owner[i];
	if (c->run && (c->run->stack != o->stack || c->run->kind != o->kind || c->run_flags != flags))
		run_flush(c);
	c->run = o;
	c->run_flags = flags;
	c->run_pages++;
	c->run_faults += fault;
}

/*
 * The kernel's fault-around window in pages: a read fault in a file or
 * shared mapping maps the pages of the window around it that the page cache
 * holds (do_fault_around), fault_around_bytes, 64 KiB unless debugfs says
 * otherwise.
 */
static unsigned around_pages(void)
{
	static unsigned pages;
	int64_t bytes;
	if (!pages)
		pages = (unsigned)((pfs_read_decimal("/sys/kernel/debug/fault_around_bytes", &bytes) ||
				    bytes < (int64_t)page_size() ? 65536 : (uint64_t)bytes) / page_size());
	return pages;
}

/*
 * Pages [from, to) of r became held: those not in the bitmap count, one
 * fault each; one per huge page; in a read-only file or shared mapping
 * (PFS_MEM_READ_AROUND: only read faults there) one per fault-around
 * window, none where a page of the window was counted before (an earlier
 * pass's); none in a mapping whose faults were all events
 * (PFS_MEM_EVENT_FAULTS: the pages a read fault mapped around its own).
 */
static void held(struct scan_ctx *c, struct region *r, uint64_t from, uint64_t to, int huge)
{
	if (!huge && r->around == PFS_MEM_EVENT_FAULTS) { /* a file or shared mapping: no owners */
		c->pages += pfs_bits_set_count(&r->bits, from, to);
		return;
	}
	uint64_t block_pages = huge ? HUGE_PAGES : r->around ? around_pages() : 1;
	if (block_pages == 1 && !r->owner) { /* no owners to charge page by page */
		uint64_t fresh = pfs_bits_set_count(&r->bits, from, to);
		c->pages += fresh;
		c->faults += fresh;
		return;
	}
	if (block_pages == 1) { /* a heap: its pages held already passed over by words, the new ones charged to their owners */
		for (uint64_t i = pfs_bits_next_clear(&r->bits, from, to); i < to;) {
			uint64_t j = pfs_bits_next(&r->bits, i, to);
			pfs_bits_set_count(&r->bits, i, j);
			for (uint64_t k = i; k < j; k++)
				count_page(c, r, k, 1, 0);
			i = j < to ? pfs_bits_next_clear(&r->bits, j, to) : to;
		}
		return;
	}
	uint64_t base = r->start / page_size();
	int counted_in_block = 0;
	uint64_t block = UINT64_MAX;
	for (uint64_t i = from; i < to; i++) {
		/* the kernel mapped the whole huge page, or the window's cached pages, with one fault */
		uint64_t b = (base + i) / block_pages;
		if (b != block) {
			block = b;
			/* a page of it counted before (a fault event, 4 KiB pages later collapsed): its fault was */
			uint64_t first = b * block_pages, lo = first > base ? first - base : 0;
			uint64_t hi = first + block_pages - base;
			counted_in_block = pfs_bits_any(&r->bits, lo, hi < r->npages ? hi : r->npages);
		}
		if (!pfs_bits_set_count(&r->bits, i, i + 1))
			continue;
		count_page(c, r, i, !counted_in_block, 0);
		counted_in_block = 1;
	}
}

/*
 * Pages of a run the page map calls written since the fork's write-protect
 * that were held at the fork: copy-on-write, once each.  Only regions armed
 * at a fork (write-protected; with fault events nothing is, and the events
 * count the copies: pevent.c): elsewhere every page is "written".
 */
uint64_t pfs_region_cow_clear(struct region *r, uint64_t from, uint64_t to)
{
	uint64_t n = r->cow ? pfs_bits_clear(&r->cow->bits, from, to) : 0;
	if (n)
		r->cow->left -= n;
	return n;
}

static void on_written(struct scan_ctx *c, struct region *r, uint64_t from, uint64_t to)
{
	if (!r->cow || !r->cow->left || !r->cow->wp_gen)
		return;
	if (!r->owner) {
		c->copies += pfs_region_cow_clear(r, from, to);
		return;
	}
	for (uint64_t i = pfs_bits_next(&r->cow->bits, from, to); i < to; i = pfs_bits_next(&r->cow->bits, i + 1, to)) {
		pfs_bits_clear(&r->cow->bits, i, i + 1);
		r->cow->left--;
		count_page(c, r, i, 1, PFS_TOUCH_COW);
	}
}

/*
 * A run [from, to) (page indices of r) the page map calls held.  Bitmap
 * pages between held runs were dropped (cleared: touching them again is a
 * first touch again).  A page is held when present, or swapped out and not
 * write-protected: once a range is write-protected for copy-on-write, the
 * kernel leaves uffd-wp markers in its empty entries, which the page map
 * reports as swapped but not written.  (A protected page then swapped out
 * looks the same, and is counted again if swapped back in: rare, and said
 * in the docs.)
 */
#define HELD_CATS (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)
#define HELD_RETURN (PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_WRITTEN | PAGE_IS_HUGE)

static void on_held(struct scan_ctx *c, struct region *r, uint64_t from, uint64_t to, uint64_t cats)
{
	if (!(cats & PAGE_IS_PRESENT) && !(cats & PAGE_IS_WRITTEN))
		return; /* a uffd-wp marker: nothing there */
	if (from > c->cursor) {
		pfs_bits_clear(&r->bits, c->cursor, from);
		pfs_region_cow_clear(r, c->cursor, from); /* dropped: a later write is a first touch, not a copy */
	}
	c->cursor = to;
	if (cats & PAGE_IS_HUGE)
		c->huge = 1;
	held(c, r, from, to, (cats & PAGE_IS_HUGE) != 0);
	/*
	 * A baseline (no thread: the start's adoption, a fork's child) counts no
	 * copy.  In a child every page reads as written (its mappings lost their
	 * registration at the fork): clearing the copy bits inherited, which the
	 * arming then sets again, were writes for nothing, each a copy of its
	 * page after the fork.
	 */
	if ((cats & PAGE_IS_WRITTEN) && c->t)
		on_written(c, r, from, to);
}

/* A region's copies written as one record (a heap's went by their owners' runs). */
static void region_done_copies(struct scan_ctx *c, struct region *r)
{
	if (c->t && !r->owner && c->copies)
		write_touch(c->t, r->alloc_seq, r->stack, r->kind, c->copies, c->copies, c->now, PFS_TOUCH_COW);
}

/* The end of a region's held pass: pages past the last held run were dropped; its touches and copies written. */
static uint64_t region_done(struct scan_ctx *c, struct region *r)
{
	run_flush(c);
	if (r->huge != (uint8_t)c->huge) /* written only when it changes: shared after a fork (bits.c) */
		r->huge = (uint8_t)c->huge;
	if (c->cursor < r->npages) {
		pfs_bits_clear(&r->bits, c->cursor, r->npages);
		pfs_region_cow_clear(r, c->cursor, r->npages);
	}
	if (c->t && !r->owner && c->pages)
		write_touch(c->t, r->alloc_seq, r->stack, r->kind, c->pages, c->faults, c->now, 0);
	region_done_copies(c, r);
	return c->faults + c->copies;
}

struct walk_ctx {
	struct scan_ctx *c;
	struct region *r;
};

static void walk_run(uint64_t from, uint64_t to, uint64_t cats, void *arg)
{
	struct walk_ctx *w = arg;
	uint64_t ps = page_size();
	on_held(w->c, w->r, (from - w->r->start) / ps, (to - w->r->start) / ps, cats);
}

uint64_t pfs_region_scan(struct region *r, struct pfs_thread *t, uint64_t now)
{
	struct scan_ctx c = {.t = t, .now = now};
	struct walk_ctx w = {&c, r};
	if (pfs_pagemap_walk(-1, r->start, pfs_region_end(r), HELD_CATS, HELD_RETURN, scan_vec, SCAN_VEC, walk_run, &w))
		return 0;
	return region_done(&c, r);
}

uint64_t pfs_region_found(struct region *r, struct pfs_thread *t, uint64_t now, uint64_t from, uint64_t to)
{
	uint64_t ps = page_size();
	struct scan_ctx c = {.t = t, .now = now, .cursor = (from - r->start) / ps};
	held(&c, r, (from - r->start) / ps, (to - r->start) / ps, 0);
	run_flush(&c);
	if (t && !r->owner && c.pages)
		write_touch(t, r->alloc_seq, r->stack, r->kind, c.pages, c.faults, now, 0);
	return c.faults;
}

uint64_t pfs_region_held_touched(struct region *r, struct pfs_thread *t, uint64_t now)
{
	uint64_t pages = pfs_bits_count(&r->bits), faults = pages;
	if (!pages || (r->owner && !r->extent)) /* an extent's owners are still its own (heap.h) */
		return 0;
	if (r->huge) { /* one fault a huge page the region holds any of */
		uint64_t base = r->start / page_size();
		faults = 0;
		for (uint64_t b = base / HUGE_PAGES; b * HUGE_PAGES < base + r->npages; b++) {
			uint64_t lo = b * HUGE_PAGES > base ? b * HUGE_PAGES - base : 0, hi = (b + 1) * HUGE_PAGES - base;
			faults += pfs_bits_any(&r->bits, lo, hi < r->npages ? hi : r->npages) != 0;
		}
	}
	write_touch(t, r->alloc_seq, r->stack, r->kind, pages, faults, now, 0);
	return faults;
}

/* A later write to the page, protected again by then, is no copy: it leaves r->cow. */
uint64_t pfs_region_copied(struct region *r, struct pfs_thread *t, uint64_t now, uint64_t i)
{
	if (!r->cow || i >= r->npages || !pfs_bits_get(&r->cow->bits, i))
		return 0;
	struct scan_ctx c = {.t = t, .now = now};
	pfs_bits_clear(&r->cow->bits, i, i + 1);
	r->cow->left--;
	count_page(&c, r, i, 1, PFS_TOUCH_COW);
	run_flush(&c);
	region_done_copies(&c, r);
	return 1;
}

/* ---- the pass ------------------------------------------------------------- */

/*
 * The walk: runs in address order, regions in address order; each run is
 * cut at region boundaries, its parts handed to their regions or, outside
 * every region, to `unknown`, which may add regions (the walk then finds
 * its place again).
 */
struct pass {
	struct pfs_thread *t;
	uint64_t now;
	uint64_t i;		/* the region the walk is in or before */
	struct scan_ctx c;	/* table[i]'s reading, when started */
	int started;
	uint64_t faults;
	pfs_unknown_fn unknown;
	uint64_t unknown_from, unknown_to; /* a pending run of unknown pages, merged */
};

/* table[i] read to its end; one the walk found nothing in holds nothing now. */
static void pass_finish_region(struct pass *p)
{
	if (!p->started)
		p->c = (struct scan_ctx){.t = p->t, .now = p->now};
	p->faults += region_done(&p->c, table[p->i]);
	p->started = 0;
	p->i++;
}

static void pass_flush_unknown(struct pass *p)
{
	if (p->unknown_to <= p->unknown_from)
		return;
	uint64_t from = p->unknown_from, to = p->unknown_to, resume = p->i < nregions ? table[p->i]->start : 0;
	int resumable = p->i < nregions;
	p->unknown_from = p->unknown_to = 0;
	if (!p->unknown)
		return;
	/* The callback may insert regions: the one the walk was before is found again by its start. */
	p->faults += p->unknown(p->t, p->now, from, to);
	/* Regions it added lie before `resume`: they took their baseline, the next pass reads them. */
	p->i = resumable ? first_starting(resume) : nregions;
}

static void pass_run(uint64_t from, uint64_t to, uint64_t cats, void *arg)
{
	struct pass *p = arg;
	uint64_t ps = page_size();
	while (from < to) {
		/* regions that end before this run are done */
		while (p->i < nregions && pfs_region_end(table[p->i]) <= from)
			pass_finish_region(p);
		struct region *r = p->i < nregions ? table[p->i] : NULL;
		uint64_t stop = r ? (r->start < to ? r->start : to) : to;
		if (!r || from < r->start) { /* a part in no region */
			if (p->unknown_to == from)
				p->unknown_to = stop;
			else {
				pass_flush_unknown(p);
				p->unknown_from = from;
				p->unknown_to = stop;
			}
			from = stop;
			continue;
		}
		uint64_t end = pfs_region_end(r);
		/* heaps may overlap what follows them: a region ends where the next one starts */
		if (p->i + 1 < nregions && table[p->i + 1]->start < end)
			end = table[p->i + 1]->start;
		uint64_t part = to < end ? to : end;
		if (!p->started) {
			p->c = (struct scan_ctx){.t = p->t, .now = p->now};
			p->started = 1;
		}
		on_held(&p->c, r, (from - r->start) / ps, (part - r->start) / ps, cats);
		from = part;
		if (part == end)
			pass_finish_region(p);
	}
}

uint64_t pfs_regions_pass(struct pfs_thread *t, uint64_t now, pfs_unknown_fn unknown, pfs_skip_fn skip)
{
	struct pass p = {.t = t, .now = now, .unknown = unknown};
	if (!pfs_pagemap_space_walks()) { /* page map entries read one region at a time: nothing is found outside */
		for (uint64_t i = 0; i < nregions; i++)
			p.faults += pfs_region_scan(table[i], t, now);
		return p.faults;
	}
	/*
	 * The whole address space in one walk, files' pages and shared memory
	 * too: runs in no region (a library's text the program ran) are left
	 * alone by `unknown`; the large ones it knows it leaves are not walked
	 * (`skip`: a walk in pieces, in address order).
	 */
	int fd = pfs_pagemap_fd();
	if (fd < 0)
		return 0;
	for (uint64_t from = 0, lo, hi; from < PFS_USER_END; from = hi) {
		if (!skip || !skip(from, now, &lo, &hi) || lo < from || hi <= lo)
			lo = hi = PFS_USER_END;
		/* what a failed walk found before failing is counted; the regions not reached keep their bitmaps */
		if (lo > from && pfs_pagemap_walk(fd, from, lo, HELD_CATS, HELD_RETURN, scan_vec, SCAN_VEC, pass_run, &p))
			return p.faults;
	}
	pass_flush_unknown(&p);
	while (p.i < nregions)
		pass_finish_region(&p);
	return p.faults;
}
