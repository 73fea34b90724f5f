/* Fast mode: regions, present-page scans, TOUCH and SCAN records, the scanner thread. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "arena.h"
#include "fdkeep.h"
#include "heap.h"
#include "kcompat.h"
#include "msg.h"
#include "pagemap.h"
#include "periodic.h"
#include "probe.h"
#include "real.h"
#include "regions.h"
#include "sites.h"
#include "tracker.h"

#include <uthash.h>

struct region {
	UT_hash_handle hh; /* keyed by start */
	uint64_t start;
	uint64_t npages;
	uint64_t alloc_seq;
	uint64_t wp_gen;	/* registered (MODE_WP) with the write-protect descriptor of this generation */
	uint32_t stack;
	uint8_t kind;
	uint8_t cowable;       /* private anonymous memory: a write after fork copies it */
	uint8_t huge;          /* the last scan found transparent huge pages in it */
	uint64_t cap;   /* pages the bitmaps (and owners) have room for: npages, more for heaps */
	uint64_t *bits; /* pages held at the last scan */
	uint64_t *cow;  /* pages held at the last fork and not written since; NULL before a fork */
	/* Heaps (brk heap, thread arenas) only: the site that carved each page (heap.c). */
	struct owner *owner;
};

struct owner {
	uint32_t stack;
	uint8_t kind;
	uint8_t pad[3];
};

/*
 * A mutex, not a spinlock: the scanner holds it for a whole pass of ioctls.
 * Taken by hooks (free, munmap, madvise) and the scanner; never while
 * holding another shim lock except the log's and the arena's, which come
 * after it in the fork order (core.c).
 */
static pthread_mutex_t regions_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct region *regions;
static int enabled;
static uint64_t first_touches; /* atomic */
static uint64_t page_size = 4096;
static int last_scan_found; /* the previous periodic pass found touches: write the next one even if empty */
static struct pfs_fd uffd = PFS_FD_INIT(521, NULL, 0); /* asynchronous write-protect, for copy-on-write after fork */
static uint64_t uffd_gen = 1; /* of that descriptor; a region's wp_gen 0 is never registered */
static int cow_failed; /* said once: copy-on-write is not counted */
static uint64_t cow_faults; /* atomic */

/*
 * Ranges per PAGEMAP_SCAN call.  After a fork with scattered writes a region
 * is thousands of ranges: 128 made a 1 GiB region's scan ~600 calls
 * (measured); one static vector (every scan holds regions_mutex) of 4096
 * makes it ~20.
 */
#define SCAN_VEC 4096
static struct page_region scan_vec[SCAN_VEC];

static int fast_init(const char **why)
{
	page_size = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	int how = pfs_proc.cfg.pagemap;
	int first = pfs_proc.cfg.run_pid == 0;
	int scan_ok = how != PFS_PAGEMAP_READ && pfs_probe_pagemap_scan() == 1;
	if (how == PFS_PAGEMAP_SCAN && !scan_ok) {
		if (first)
			pfs_warn("PFSHIM_PAGEMAP=scan: PAGEMAP_SCAN on /proc/self/pagemap is not usable here (it needs "
				 "Linux 6.7 or newer); reading page map entries instead");
	} else if (how == PFS_PAGEMAP_AUTO && !scan_ok && first) {
		pfs_warn("PAGEMAP_SCAN is not usable here (it needs Linux 6.7 or newer): fast mode reads page map "
			 "entries, slower, same counts");
	}
	int err = pfs_pagemap_init(!scan_ok);
	if (err)
		*why = "needs /proc/self/pagemap, which cannot be opened here";
	return err;
}

static void periodic_scan(struct pfs_thread *t)
{
	pfs_regions_scan_all(t, PFS_SCAN_PERIODIC);
}

static int fast_start(const char **why)
{
	(void)why;
	pfs_periodic_set(periodic_scan, pfs_proc.cfg.scan_ms);
	enabled = 1;
	return 0;
}

uint64_t pfs_bits_set_count(uint64_t *bits, uint64_t from, uint64_t to)
{
	uint64_t fresh = 0;
	while (from < to) {
		uint64_t w = from / 64, lo = from % 64;
		uint64_t n = 64 - lo < to - from ? 64 - lo : to - from;
		uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << lo;
		fresh += (uint64_t)__builtin_popcountll(mask & ~bits[w]);
		bits[w] |= mask;
		from += n;
	}
	return fresh;
}

void pfs_bits_clear(uint64_t *bits, uint64_t from, uint64_t to)
{
	while (from < to) {
		uint64_t w = from / 64, lo = from % 64;
		uint64_t n = 64 - lo < to - from ? 64 - lo : to - from;
		uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << lo;
		bits[w] &= ~mask;
		from += n;
	}
}

static size_t bits_bytes(uint64_t npages)
{
	return (size_t)((npages + 63) / 64) * sizeof(uint64_t);
}

/* One page-map walk over the region for pages with any of `cats`, handing fn each run as page indices. */
struct walk_ctx {
	struct region *r;
	void (*fn)(struct region *, uint64_t, uint64_t, uint64_t, void *);
	void *arg;
};

static void walk_run(uint64_t from, uint64_t to, uint64_t cats, void *arg)
{
	struct walk_ctx *w = arg;
	w->fn(w->r, (from - w->r->start) / page_size, (to - w->r->start) / page_size, cats, w->arg);
}

static int walk_pages(struct region *r, uint64_t cats, uint64_t ret_cats,
		      void (*fn)(struct region *, uint64_t, uint64_t, uint64_t, void *), void *arg)
{
	struct walk_ctx w = {r, fn, arg};
	return pfs_pagemap_walk(r->start, r->start + r->npages * page_size, cats, ret_cats, scan_vec, SCAN_VEC,
				walk_run, &w); /* scan_vec: regions_mutex held */
}

static void write_touch(struct pfs_thread *t, uint64_t alloc_seq, uint32_t stack, int kind, uint64_t pages,
			uint64_t now, uint16_t flags)
{
	struct pfs_rec_touch *rec = t ? pfs_rec_begin(&t->w, sizeof(*rec)) : NULL;
	__atomic_add_fetch(flags & PFS_TOUCH_COW ? &cow_faults : &first_touches, pages, __ATOMIC_RELAXED);
	if (!rec)
		return;
	rec->time_ns = now;
	rec->alloc_seq = alloc_seq;
	rec->stack = stack;
	rec->pages = pages > UINT32_MAX ? UINT32_MAX : (uint32_t)pages;
	rec->kind = (uint8_t)kind;
	pfs_rec_end(rec, PFS_REC_TOUCH, flags, sizeof(*rec));
}

/*
 * One scan of one region.  `t` NULL: a baseline, nothing is counted or
 * logged.  Pages of a heap are charged to the site that carved each one, in
 * runs of the same owner.
 */
struct scan_ctx {
	struct pfs_thread *t;
	uint64_t now;
	uint64_t cursor;
	uint64_t fresh, copied;
	uint16_t flags;			/* of the pages being added up: 0 or PFS_TOUCH_COW */
	const struct owner *run;	/* heap: the owner of the pending run */
	uint64_t run_pages;
	int huge;			/* a held range is a transparent huge page */
};

static void run_flush(struct scan_ctx *c)
{
	if (c->run_pages && c->t)
		write_touch(c->t, 0, c->run->stack ? c->run->stack : pfs_stacks_unknown(c->t),
			    c->run->stack ? c->run->kind : PFS_KIND_MALLOC, c->run_pages, c->now, c->flags);
	c->run_pages = 0;
	c->run = NULL;
}

/* A page counted: whole regions are added up by the caller, heap pages go to their owner's run. */
static void count_page(struct scan_ctx *c, struct region *r, uint64_t i)
{
	if (c->flags)
		c->copied++;
	else
		c->fresh++;
	if (!r->owner)
		return;
	const struct owner *o = &r->owner[i];
	if (c->run && (c->run->stack != o->stack || c->run->kind != o->kind))
		run_flush(c);
	c->run = o;
	c->run_pages++;
}

/*
 * Held pages not in the bitmap are first touches; bitmap pages between held
 * ranges were dropped.  A page is held when present, or swapped out and not
 * write-protected: once a range is write-protected for copy-on-write, the
 * kernel leaves uffd-wp markers in its empty entries, which pagemap reports
 * as swapped but not written.  (A protected page that is then swapped out
 * looks the same, and is counted again if swapped back in: rare, and said
 * in the docs.)
 */
#define HELD_CATS (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)
#define HELD_RETURN (PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_WRITTEN | PAGE_IS_HUGE)

static void on_held(struct region *r, uint64_t from, uint64_t to, uint64_t cats, void *arg)
{
	struct scan_ctx *c = arg;
	if (!(cats & PAGE_IS_PRESENT) && !(cats & PAGE_IS_WRITTEN))
		return; /* a uffd-wp marker: nothing there */
	pfs_bits_clear(r->bits, c->cursor, from);
	if (r->cow)
		pfs_bits_clear(r->cow, c->cursor, from); /* dropped: a later write is a first touch, not a copy */
	c->cursor = to;
	if (cats & PAGE_IS_HUGE)
		c->huge = 1;
	if (!r->owner) {
		c->fresh += pfs_bits_set_count(r->bits, from, to);
		return;
	}
	for (uint64_t i = from; i < to; i++)
		if (!(r->bits[i / 64] >> (i % 64) & 1)) {
			r->bits[i / 64] |= 1ull << (i % 64);
			count_page(c, r, i);
		}
}

/* Pages written since the fork's write-protect that were held at the fork: copy-on-write, once each. */
static void on_written(struct region *r, uint64_t from, uint64_t to, uint64_t cats, void *arg)
{
	struct scan_ctx *c = arg;
	(void)cats;
	for (uint64_t i = from; i < to; i++)
		if (r->cow[i / 64] >> (i % 64) & 1) {
			r->cow[i / 64] &= ~(1ull << (i % 64));
			count_page(c, r, i);
		}
}

/*
 * Compares the region with what the kernel holds now: pages held and not
 * in the bitmap are first touches (counted, set), pages in the bitmap and
 * no longer held were dropped (cleared: touching them again is a new first
 * touch).  After a fork, written pages that were held at the fork are
 * copy-on-write faults.  Logs them (unless a baseline) and returns how many.
 */
static uint64_t scan_region(struct region *r, struct pfs_thread *t, uint64_t now)
{
	struct scan_ctx c = {.t = t, .now = now};
	if (walk_pages(r, HELD_CATS, HELD_RETURN, on_held, &c))
		return 0;
	run_flush(&c);
	r->huge = (uint8_t)c.huge;
	pfs_bits_clear(r->bits, c.cursor, r->npages);
	if (r->cow) {
		pfs_bits_clear(r->cow, c.cursor, r->npages);
		c.flags = PFS_TOUCH_COW;
		c.cursor = 0;
		walk_pages(r, PAGE_IS_WRITTEN, PAGE_IS_WRITTEN, on_written, &c);
		run_flush(&c);
	}
	if (t && !r->owner) {
		if (c.fresh)
			write_touch(t, r->alloc_seq, r->stack, r->kind, c.fresh, now, 0);
		if (c.copied)
			write_touch(t, r->alloc_seq, r->stack, r->kind, c.copied, now, PFS_TOUCH_COW);
	}
	return c.fresh + c.copied;
}

static void write_scan(struct pfs_thread *t, uint64_t start, uint64_t fresh, uint32_t nregions, int reason)
{
	struct pfs_rec_scan *rec = t ? pfs_rec_begin(&t->w, sizeof(*rec)) : NULL;
	if (!rec)
		return;
	rec->time_ns = start;
	rec->duration_ns = pfs_now_ns() - start;
	rec->new_pages = fresh;
	rec->regions = nregions;
	rec->reason = (uint32_t)reason;
	pfs_rec_end(rec, PFS_REC_SCAN, 0, sizeof(*rec));
}

static void region_free(struct region *r)
{
	HASH_DEL(regions, r);
	pfs_pool_free(r->bits, bits_bytes(r->cap));
	pfs_pool_free(r->cow, bits_bytes(r->cap));
	pfs_pool_free(r->owner, r->cap * sizeof(*r->owner));
	pfs_pool_free(r, sizeof(*r));
}

static void page_span(uint64_t addr, uint64_t len, uint64_t *start, uint64_t *end)
{
	pfs_page_span(addr, len, page_size, start, end);
}

static int overlaps(const struct region *r, uint64_t start, uint64_t end)
{
	return r->start < end && start < r->start + r->npages * page_size;
}

static struct region *region_new(uint64_t start, uint64_t npages, uint64_t alloc_seq, uint32_t stack, int kind,
				 int cowable)
{
	struct region *r = pfs_pool_alloc(sizeof(*r));
	if (!r)
		return NULL;
	r->cap = npages;
	r->bits = pfs_pool_alloc(bits_bytes(npages));
	if (!r->bits) {
		pfs_pool_free(r, sizeof(*r));
		return NULL;
	}
	r->start = start;
	r->npages = npages;
	r->alloc_seq = alloc_seq;
	r->stack = stack;
	r->kind = (uint8_t)kind;
	r->cowable = (uint8_t)cowable;
	HASH_ADD(hh, regions, start, sizeof(r->start), r);
	return r;
}

static void fast_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack,
		     int kind, int cowable)
{
	(void)t;
	if (!enabled || !len)
		return;
	uint64_t start, end;
	page_span(addr, len, &start, &end);
	int saved = errno;
	pthread_mutex_lock(&regions_mutex);
	struct region *r, *tmp;
	HASH_ITER(hh, regions, r, tmp)
	if (!r->owner && overlaps(r, start, end))
		region_free(r); /* stale: its end was not seen (e.g. MAP_FIXED over it) */
	r = region_new(start, (end - start) / page_size, alloc_seq, stack, kind, cowable);
	if (r)
		scan_region(r, NULL, 0); /* the baseline: pages held before the program touched anything */
	pthread_mutex_unlock(&regions_mutex);
	errno = saved;
}

static void fast_free_at(struct pfs_thread *t, uint64_t addr)
{
	if (!enabled)
		return;
	uint64_t start = addr & ~(page_size - 1);
	int saved = errno;
	pthread_mutex_lock(&regions_mutex);
	struct region *r;
	HASH_FIND(hh, regions, &start, sizeof(start), r);
	if (r && !r->owner) { /* a heap block in a heap's first page: the heap stays */
		scan_region(r, t, pfs_now_ns());
		region_free(r);
	}
	pthread_mutex_unlock(&regions_mutex);
	errno = saved;
}

static void fast_unmap(struct pfs_thread *t, uint64_t addr, uint64_t len)
{
	if (!enabled || !len)
		return;
	uint64_t start, end;
	page_span(addr, len, &start, &end);
	uint64_t now = pfs_now_ns();
	int saved = errno;
	pthread_mutex_lock(&regions_mutex);
	struct region *r, *tmp;
	HASH_ITER(hh, regions, r, tmp)
	{
		if (r->owner || !overlaps(r, start, end))
			continue;
		scan_region(r, t, now);
		uint64_t rend = r->start + r->npages * page_size;
		/* Keep the parts outside the unmapped range, with what they held. */
		if (r->start < start) {
			struct region *head = region_new(r->start, (start - r->start) / page_size, r->alloc_seq,
							  r->stack, r->kind, r->cowable);
			if (head)
				memcpy(head->bits, r->bits, bits_bytes(head->npages));
		}
		if (rend > end) {
			uint64_t first = (end - r->start) / page_size;
			struct region *tail =
				region_new(end, (rend - end) / page_size, r->alloc_seq, r->stack, r->kind, r->cowable);
			if (tail)
				for (uint64_t i = 0; i < tail->npages; i++)
					if (r->bits[(first + i) / 64] >> ((first + i) % 64) & 1)
						pfs_bits_set_count(tail->bits, i, i + 1);
		}
		/* By pointer: the head, if any, has the same start (uthash keeps both until then). */
		region_free(r);
	}
	pthread_mutex_unlock(&regions_mutex);
	errno = saved;
}

static void fast_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len)
{
	(void)old_len;
	if (!enabled)
		return;
	uint64_t start = old & ~(page_size - 1);
	int saved = errno;
	pthread_mutex_lock(&regions_mutex);
	struct region *r;
	HASH_FIND(hh, regions, &start, sizeof(start), r);
	if (r && r->owner)
		r = NULL;
	uint64_t seq = 0;
	uint32_t stack = 0;
	int kind = 0, cowable = 0, found = r != NULL;
	if (r) {
		seq = r->alloc_seq;
		stack = r->stack;
		kind = r->kind;
		cowable = r->cowable;
		region_free(r);
	}
	pthread_mutex_unlock(&regions_mutex);
	errno = saved;
	/* The moved pages are held at the new place: the new baseline, not first touches. */
	if (found)
		fast_add(t, new_addr, new_len, seq, stack, kind, cowable);
}

static void fast_sync(struct pfs_thread *t, uint64_t addr, uint64_t len, int reason)
{
	if (!enabled || !len)
		return;
	uint64_t start, end;
	page_span(addr, len, &start, &end);
	uint64_t now = pfs_now_ns(), fresh = 0;
	uint32_t n = 0;
	int saved = errno;
	pthread_mutex_lock(&regions_mutex);
	struct region *r, *tmp;
	HASH_ITER(hh, regions, r, tmp)
	if (overlaps(r, start, end)) {
		fresh += scan_region(r, t, now);
		n++;
	}
	if (fresh)
		write_scan(t, now, fresh, n, reason);
	pthread_mutex_unlock(&regions_mutex);
	errno = saved;
}

uint64_t pfs_regions_scan_all(struct pfs_thread *t, int reason)
{
	if (!enabled)
		return 0;
	uint64_t now = pfs_now_ns(), fresh = 0;
	int saved = errno;
	pthread_mutex_lock(&regions_mutex);
	uint32_t n = HASH_COUNT(regions);
	struct region *r, *tmp;
	HASH_ITER(hh, regions, r, tmp)
	fresh += scan_region(r, t, now);
	/* Empty periodic passes are written only where they end a burst: rates over time need the edges. */
	if (n && (fresh || last_scan_found || reason != PFS_SCAN_PERIODIC))
		write_scan(t, now, fresh, n, reason);
	last_scan_found = fresh != 0;
	pthread_mutex_unlock(&regions_mutex);
	errno = saved;
	return fresh;
}

static void fast_counts(uint64_t *first, uint64_t *cow)
{
	*first = __atomic_load_n(&first_touches, __ATOMIC_RELAXED);
	*cow = __atomic_load_n(&cow_faults, __ATOMIC_RELAXED);
}

static void fast_lock(void)
{
	pthread_mutex_lock(&regions_mutex);
}

static void fast_unlock(void)
{
	pthread_mutex_unlock(&regions_mutex);
}

/*
 * Heaps (heap.c carves them): each is one region that grows with its mark,
 * with the site that carved each page; a scan charges each page that became
 * held to its owner.
 */

/* Room for `pages` pages in a heap's tables; 0 or -ENOMEM. */
static int heap_grow(struct region *r, uint64_t pages)
{
	if (pages <= r->cap)
		return 0;
	uint64_t cap = r->cap * 2 > pages ? r->cap * 2 : pages;
	uint64_t *bits = pfs_pool_alloc(bits_bytes(cap));
	uint64_t *cow = r->cow ? pfs_pool_alloc(bits_bytes(cap)) : NULL;
	struct owner *owner = pfs_pool_alloc(cap * sizeof(*owner));
	if (!bits || !owner || (r->cow && !cow)) {
		pfs_pool_free(bits, bits_bytes(cap));
		pfs_pool_free(cow, bits_bytes(cap));
		pfs_pool_free(owner, cap * sizeof(*owner));
		return -ENOMEM;
	}
	memcpy(bits, r->bits, bits_bytes(r->cap));
	if (cow)
		memcpy(cow, r->cow, bits_bytes(r->cap));
	memcpy(owner, r->owner, r->cap * sizeof(*owner));
	pfs_pool_free(r->bits, bits_bytes(r->cap));
	pfs_pool_free(r->cow, bits_bytes(r->cap));
	pfs_pool_free(r->owner, r->cap * sizeof(*owner));
	r->bits = bits;
	r->cow = cow;
	r->owner = owner;
	r->cap = cap;
	return 0;
}

static struct region *heap_region(struct pfs_heap *h)
{
	if (h->priv)
		return h->priv;
	struct region *r = region_new(h->start, 0, 0, 0, PFS_KIND_MALLOC, 1);
	if (!r)
		return NULL;
	r->owner = pfs_pool_alloc(sizeof(*r->owner)); /* grown on the first carve */
	if (!r->owner) {
		region_free(r);
		return NULL;
	}
	h->priv = r;
	return r;
}

static void fast_heap_carved(struct pfs_thread *t, struct pfs_heap *h, uint64_t from, uint64_t to, uint64_t top,
			     uint32_t stack, int kind)
{
	(void)t;
	(void)top;
	if (!enabled || from >= to)
		return;
	pthread_mutex_lock(&regions_mutex);
	struct region *r = heap_region(h);
	uint64_t i = (from - h->start) / page_size, n = (to - h->start) / page_size;
	if (r && heap_grow(r, n) == 0) {
		for (; i < n; i++) {
			r->owner[i].stack = stack;
			r->owner[i].kind = (uint8_t)kind;
		}
		r->npages = n;
	}
	pthread_mutex_unlock(&regions_mutex);
}

static void fast_heap_prefaulted(struct pfs_heap *h, uint64_t start, uint64_t end)
{
	if (!enabled)
		return;
	pthread_mutex_lock(&regions_mutex);
	struct region *r = h->priv;
	/* Held now, so not first touches; a page the policy did not make present is cleared by the next scan. */
	if (r && start >= r->start && end <= r->start + r->npages * page_size)
		pfs_bits_set_count(r->bits, (start - r->start) / page_size, (end - r->start) / page_size);
	pthread_mutex_unlock(&regions_mutex);
}

/*
 * Copy-on-write after fork: asynchronous write-protect (UFFD_FEATURE_WP_ASYNC).
 * The kernel resolves a write to a protected page itself, no message and no
 * thread, and PAGEMAP_SCAN then reports the page as written.  A descriptor
 * of user-mode-only kind is enough (nothing is ever delivered), so this
 * works unprivileged.  Without WP_UNPOPULATED only pages present at the
 * fork are protected: pages first touched later are first touches.
 */
static int cow_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -errno;
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC};
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = -errno;
		close(fd);
		return err;
	}
	fd = pfs_fd_keep(&uffd, fd);
	uffd_gen++; /* a new descriptor: every region registers again */
	return fd < 0 ? fd : 0;
}

/* At a fork, in both processes: what a region holds now is shared; protect it. regions_mutex held. */
static uint64_t huge_skipped_pages; /* huge-page memory whose copy-on-write is not counted */

static void cow_arm(struct region *r)
{
	if (!r->cowable || cow_failed)
		return;
	/*
	 * Write-protecting a transparent huge page splits it at its first write
	 * (measured): arming would change the program's memory.  Its
	 * copy-on-write is not counted; said once per fork (pfs_regions_cow_note).
	 */
	if (r->huge) {
		huge_skipped_pages += r->npages;
		if (r->cow) {
			pfs_pool_free(r->cow, bits_bytes(r->cap));
			r->cow = NULL;
		}
		return;
	}
	if (!pfs_fd_ok(&uffd)) {
		int err = cow_open();
		if (err) {
			cow_failed = 1;
			pfs_warn("copy-on-write after fork is not counted in process %d: asynchronous write-protect is "
				 "not available (%s)",
				 (int)pfs_proc.pid, strerror(-err));
			return;
		}
	}
	struct uffdio_range range = {.start = r->start, .len = r->npages * page_size};
	int registered = r->wp_gen == uffd_gen;
	if (!registered || r->owner) { /* a heap has grown since: register all of it again */
		struct uffdio_register reg = {.range = range, .mode = UFFDIO_REGISTER_MODE_WP};
		if (PFS_NO_EINTR(ioctl(uffd.fd, UFFDIO_REGISTER, &reg)) && !registered)
			return; /* not a kind of memory the kernel protects: its writes are not counted */
		r->wp_gen = uffd_gen;
	}
	if (!r->cow)
		r->cow = pfs_pool_alloc(bits_bytes(r->cap));
	if (!r->cow)
		return;
	memcpy(r->cow, r->bits, bits_bytes(r->cap));
	struct uffdio_writeprotect wp = {.range = range, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
	if (PFS_NO_EINTR(ioctl(uffd.fd, UFFDIO_WRITEPROTECT, &wp))) {
		pfs_pool_free(r->cow, bits_bytes(r->cap));
		r->cow = NULL;
	}
}

static void cow_note_huge(void)
{
	if (huge_skipped_pages)
		pfs_warn("fork: copy-on-write of %llu MiB of transparent huge pages is not counted in process %d "
			 "(write-protecting them would split them)",
			 (unsigned long long)(huge_skipped_pages * page_size >> 20), (int)pfs_proc.pid);
}

/* The parent after a fork: its touches so far are counted, then every region is armed. */
static void fast_fork_parent(struct pfs_thread *t)
{
	if (!enabled)
		return;
	uint64_t now = pfs_now_ns();
	int saved = errno;
	pthread_mutex_lock(&regions_mutex);
	struct region *r, *tmp;
	huge_skipped_pages = 0;
	HASH_ITER(hh, regions, r, tmp)
	{
		scan_region(r, t, now);
		cow_arm(r);
	}
	cow_note_huge();
	pthread_mutex_unlock(&regions_mutex);
	errno = saved;
}

/*
 * In a forked child: the parent's pagemap descriptor describes the parent,
 * so the child reads its own (fdkeep reopens it); every inherited region is
 * announced in the child's log (ALLOC with PFS_ALLOC_INHERITED) and takes a
 * new baseline: pages present at the fork are the parent's touches, not the
 * child's.
 */
static void fast_fork_child(struct pfs_thread *t, pfs_announce_fn announce)
{
	pthread_mutex_init(&regions_mutex, NULL);
	first_touches = 0;
	cow_faults = 0;
	last_scan_found = 0;
	pfs_periodic_child();
	/* The inherited userfaultfd acts on the parent's memory, and the child's mappings lost their registration. */
	pfs_fd_drop(&uffd);
	if (!enabled)
		return;
	if (pfs_pagemap_fd() < 0) {
		enabled = 0;
		pfs_warn("fork: cannot open /proc/self/pagemap in the child (%s); first touches are not counted in process %d",
			 strerror(errno), (int)pfs_proc.pid);
		return;
	}
	struct region *r, *tmp;
	huge_skipped_pages = 0;
	HASH_ITER(hh, regions, r, tmp)
	{
		if (!r->owner) /* heaps are charged page by page to their carvers, not as one allocation */
			r->alloc_seq = announce(t, r->kind, r->stack, r->start, r->npages * page_size);
		scan_region(r, NULL, 0);
		cow_arm(r);
	}
	cow_note_huge();
}

static void fast_tick(struct pfs_thread *t)
{
	if (enabled)
		pfs_periodic_tick(t);
}

/* Advice after which pages of the range may no longer be held: a later touch is a first touch again. */
static int drops_pages(int advice)
{
	return advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE ||
	       advice == 24 /* MADV_DONTNEED_LOCKED */;
}

/* Before and after advice that drops pages: what they held is counted, then what was dropped forgotten. */
static void fast_advised(struct pfs_thread *t, uint64_t addr, uint64_t len, int advice)
{
	if (drops_pages(advice))
		fast_sync(t, addr, len, PFS_SCAN_MADVISE);
}

static void fast_end(struct pfs_thread *t)
{
	pfs_regions_scan_all(t, PFS_SCAN_END); /* touches since the last scan */
}

const struct pfs_tracker pfs_tracker_fast = {
	.name = "fast",
	.init = fast_init,
	.start = fast_start,
	.add = fast_add,
	.free_at = fast_free_at,
	.unmap = fast_unmap,
	.remap = fast_remap,
	.sync = fast_sync,
	.advising = fast_advised,
	.advised = fast_advised,
	.tick = fast_tick,
	.heap_carved = fast_heap_carved,
	.heap_prefaulted = fast_heap_prefaulted,
	.lock = fast_lock,
	.unlock = fast_unlock,
	.fork_parent = fast_fork_parent,
	.fork_child = fast_fork_child,
	.end = fast_end,
	.counts = fast_counts,
};
