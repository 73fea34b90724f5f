/* Fast mode: regions, present-page scans, TOUCH and SCAN records, the scanner thread. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/single_threaded.h>

#include "alloc_glibc.h"
#include "arena.h"
#include "kcompat.h"
#include "pfs.h"
#include "real.h"
#include "regions.h"
#include "config.h"
#include "track.h"

#include <uthash.h>

struct region {
	UT_hash_handle hh; /* keyed by start */
	uint64_t start;
	uint64_t npages;
	uint64_t alloc_seq;
	uint32_t stack;
	uint8_t kind;
	uint8_t wp_registered; /* registered with this process's userfaultfd (MODE_WP) */
	uint8_t cowable;       /* private anonymous memory: a write after fork copies it */
	uint8_t huge;          /* the last scan found transparent huge pages in it */
	uint64_t cap;   /* pages the bitmaps (and owners) have room for: npages, more for heaps */
	uint64_t *bits; /* pages held at the last scan */
	uint64_t *cow;  /* pages held at the last fork and not written since; NULL before a fork */
	/* Heaps (brk heap, thread arenas) only: the site that carved each page, the carving mark. */
	struct owner *owner;
	uint64_t hwm;	/* highest byte handed out (plus the next chunk's header) */
	uint64_t key;	/* PFS_HEAP_MAIN, or the 64 MiB-aligned base of a thread arena's heap */
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
static int pagemap_fd = -1;
static int enabled;
static uint64_t first_touches; /* atomic */
static uint64_t page_size = 4096;
static int last_scan_found; /* the previous periodic pass found touches: write the next one even if empty */
static int use_read; /* PAGEMAP_SCAN is not used: pagemap entries are read */
int pfs_carving;
static int uffd = -1;	/* asynchronous write-protect, for copy-on-write after fork */
static int cow_failed; /* said once: copy-on-write is not counted */
static uint64_t cow_faults; /* atomic */
static unsigned scan_ms = PFS_SCAN_MS_DEFAULT;
static uint64_t last_tick;
static int scanner_running;

#define PAGEMAP_FD_MIN 520
/*
 * Ranges per PAGEMAP_SCAN call.  After a fork with scattered writes a region
 * is thousands of ranges: 128 made a 1 GiB region's scan ~600 calls
 * (measured); one static vector (every scan holds regions_mutex) of 4096
 * makes it ~20.
 */
#define SCAN_VEC 4096
static struct page_region scan_vec[SCAN_VEC];

static int open_pagemap(void)
{
	int fd = PFS_NO_EINTR(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return -errno;
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, PAGEMAP_FD_MIN);
	if (hi >= 0) {
		close(fd);
		fd = hi;
	}
	return fd;
}

int pfs_regions_init(int read_entries)
{
	use_read = read_entries;
	page_size = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	int fd = open_pagemap();
	if (fd < 0)
		return fd;
	pagemap_fd = fd;
	enabled = 1;
	/* Carving knows glibc's heaps; another allocator's mappings are tracked as mmaps (alloc_glibc.h). */
	pfs_carving = pfs_alloc_is_glibc;
	return 0;
}

int pfs_regions_enabled(void)
{
	return enabled;
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

/*
 * Compares the region with what the kernel holds now: pages held and not
 * in the bitmap are first touches (counted, set), pages in the bitmap and
 * no longer held were dropped (cleared: touching them again is a new first
 * touch).  A /proc/self/pagemap descriptor that went bad (closed or replaced
 * by the program) is reopened once.
 */
/*
 * One PAGEMAP_SCAN walk over the region for pages with any of `cats`,
 * handing each range (as page indices) to fn.  A /proc/self/pagemap
 * descriptor that went bad (closed or replaced by the program) is reopened
 * once.
 */
/*
 * The fallback for kernels without PAGEMAP_SCAN (before 6.7), or when asked
 * (PFSHIM_PAGEMAP=read): read the 8-byte pagemap entries of the range and
 * build the same category ranges the ioctl reports.  Bit 63: present, bit
 * 62: swapped, bit 57: write-protected by userfaultfd (so "written" is its
 * absence, as PAGEMAP_SCAN reports it).  Slower (8 bytes per page read
 * through the file), counts the same.
 */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_UFFD_WP (1ull << 57)

static uint64_t entry_cats(uint64_t e)
{
	uint64_t c = 0;
	if (e & PM_PRESENT)
		c |= PAGE_IS_PRESENT;
	if (e & PM_SWAPPED)
		c |= PAGE_IS_SWAPPED;
	if (!(e & PM_UFFD_WP))
		c |= PAGE_IS_WRITTEN;
	return c;
}

static int walk_pages_read(struct region *r, uint64_t cats, uint64_t ret_cats,
			   void (*fn)(struct region *, uint64_t, uint64_t, uint64_t, void *), void *arg)
{
	uint64_t buf[512];
	uint64_t run_from = 0, run_cats = 0, i = 0;
	int in_run = 0;
	while (i < r->npages) {
		uint64_t n = r->npages - i < 512 ? r->npages - i : 512;
		off_t off = (off_t)((r->start / page_size + i) * sizeof(uint64_t));
		ssize_t got = PFS_NO_EINTR(pread(pagemap_fd, buf, n * sizeof(uint64_t), off));
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		n = (uint64_t)got / sizeof(uint64_t);
		for (uint64_t k = 0; k < n; k++, i++) {
			uint64_t c = entry_cats(buf[k]);
			int match = (c & cats) != 0;
			c &= ret_cats;
			if (in_run && (!match || c != run_cats)) {
				fn(r, run_from, i, run_cats, arg);
				in_run = 0;
			}
			if (match && !in_run) {
				in_run = 1;
				run_from = i;
				run_cats = c;
			}
		}
	}
	if (in_run)
		fn(r, run_from, i, run_cats, arg);
	return 0;
}

static int walk_pages(struct region *r, uint64_t cats, uint64_t ret_cats,
		      void (*fn)(struct region *, uint64_t, uint64_t, uint64_t, void *), void *arg)
{
	if (use_read)
		return walk_pages_read(r, cats, ret_cats, fn, arg);
	struct page_region *vec = scan_vec; /* regions_mutex held */
	uint64_t end = r->start + r->npages * page_size;
	uint64_t addr = r->start;
	int reopened = 0;
	while (addr < end) {
		struct pm_scan_arg a;
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.start = addr;
		a.end = end;
		a.vec = (uint64_t)(uintptr_t)vec;
		a.vec_len = SCAN_VEC;
		a.category_anyof_mask = cats;
		a.return_mask = ret_cats;
		long n = PFS_NO_EINTR(ioctl(pagemap_fd, PAGEMAP_SCAN, &a));
		if (n < 0) {
			int err = errno;
			if (!reopened && (err == EBADF || err == ENOTTY || err == EINVAL)) {
				reopened = 1;
				int fd = open_pagemap();
				if (fd >= 0) {
					pagemap_fd = fd; /* the old number is the program's now: not closed */
					continue;
				}
			}
			return -err;
		}
		for (long i = 0; i < n; i++)
			fn(r, (vec[i].start - r->start) / page_size, (vec[i].end - r->start) / page_size,
			   vec[i].categories, arg);
		if (a.walk_end <= addr || a.walk_end >= end)
			break;
		addr = a.walk_end;
	}
	return 0;
}

static void write_touch(struct pfs_thread *t, uint64_t alloc_seq, uint32_t stack, int kind, uint64_t pages,
			uint64_t now, uint16_t flags)
{
	struct pfs_rec_touch *rec = t ? pfs_rec_begin(t, sizeof(*rec)) : NULL;
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
	struct pfs_rec_scan *rec = t ? pfs_rec_begin(t, sizeof(*rec)) : NULL;
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

void pfs_regions_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack,
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

void pfs_regions_free_at(struct pfs_thread *t, uint64_t addr)
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

void pfs_regions_unmap(struct pfs_thread *t, uint64_t addr, uint64_t len)
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

void pfs_regions_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len)
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
		pfs_regions_add(t, new_addr, new_len, seq, stack, kind, cowable);
}

void pfs_regions_scan_range(struct pfs_thread *t, uint64_t addr, uint64_t len, int reason)
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

uint64_t pfs_regions_first_touches(void)
{
	return __atomic_load_n(&first_touches, __ATOMIC_RELAXED);
}

void pfs_regions_lock(void)
{
	pthread_mutex_lock(&regions_mutex);
}

void pfs_regions_unlock(void)
{
	pthread_mutex_unlock(&regions_mutex);
}

/*
 * Heaps: glibc's brk heap and its thread arenas' heaps, where blocks under
 * the mmap threshold live.  They are never the program's mappings, so they
 * are tracked by carving (IDEAS.md): each heap keeps a mark of the highest
 * byte handed out; a block that ends past it carves the pages up to its end
 * (and the next chunk's header, which malloc writes there), and those pages
 * belong to the block's site from then on.  The heap is one region that
 * grows with the mark; a scan charges each page that became held to its
 * owner.  Pages that glibc trims and hands out again keep their first owner
 * (the mark never goes down).
 */


static struct region *heap_find(uint64_t key)
{
	struct region *r, *tmp;
	HASH_ITER(hh, regions, r, tmp)
	if (r->owner && r->key == key)
		return r;
	return NULL;
}

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

static struct region *heap_new(uint64_t key, uint64_t first)
{
	uint64_t start = first & ~(page_size - 1);
	struct region *r = region_new(start, 0, 0, 0, PFS_KIND_MALLOC, 1);
	if (!r)
		return NULL;
	r->key = key;
	r->hwm = start;
	r->owner = pfs_pool_alloc(sizeof(*r->owner)); /* grown on the first carve */
	if (!r->owner) {
		region_free(r);
		return NULL;
	}
	return r;
}

void pfs_heap_carve(struct pfs_thread *t, uint64_t p, uint64_t end, uint32_t stack, int kind)
{
	if (!enabled)
		return;
	uint64_t brk_now, key = pfs_heap_key(p, &brk_now);
	if (!key)
		return;
	int is_main = key == PFS_HEAP_MAIN;
	int saved = errno;
	pthread_mutex_lock(&regions_mutex);
	struct region *r = heap_find(key);
	if (!r)
		r = heap_new(key, p);
	if (r && p >= r->start && end > r->hwm) {
		uint64_t from = (r->hwm + page_size - 1) / page_size - r->start / page_size;
		uint64_t to = (end + page_size - 1) / page_size - r->start / page_size;
		if (heap_grow(r, to) == 0) {
			for (uint64_t i = from; i < to; i++) {
				r->owner[i].stack = stack;
				r->owner[i].kind = (uint8_t)kind;
			}
			r->npages = to;
			r->hwm = end;
		}
	}
	if (r) {
		/* This thread's window: blocks inside it carve nothing (two compares on the fast path). */
		t->carve_lo = is_main ? 0 : key;
		t->carve_hi = (r->hwm + page_size - 1) & ~(page_size - 1);
	}
	pthread_mutex_unlock(&regions_mutex);
	errno = saved;
}

void pfs_heap_prefaulted(struct pfs_thread *t, uint64_t p, uint64_t block_end, uint32_t stack, int kind,
			 uint64_t start, uint64_t end)
{
	if (!enabled)
		return;
	pfs_heap_carve(t, p, block_end, stack, kind);
	int saved = errno;
	pthread_mutex_lock(&regions_mutex);
	struct region *r, *tmp;
	HASH_ITER(hh, regions, r, tmp)
	if (r->owner && start >= r->start && end <= r->start + r->npages * page_size) {
		/* Held now, so not first touches; a page the policy did not make present is cleared by the next scan. */
		pfs_bits_set_count(r->bits, (start - r->start) / page_size, (end - r->start) / page_size);
		break;
	}
	pthread_mutex_unlock(&regions_mutex);
	errno = saved;
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
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, PAGEMAP_FD_MIN + 1);
	if (hi >= 0) {
		close(fd);
		fd = hi;
	}
	uffd = fd;
	return 0;
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
	if (uffd < 0) {
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
	if (!r->wp_registered || r->owner) { /* a heap has grown since: register all of it again */
		struct uffdio_register reg = {.range = range, .mode = UFFDIO_REGISTER_MODE_WP};
		if (PFS_NO_EINTR(ioctl(uffd, UFFDIO_REGISTER, &reg)) && !r->wp_registered)
			return; /* not a kind of memory the kernel protects: its writes are not counted */
		r->wp_registered = 1;
	}
	if (!r->cow)
		r->cow = pfs_pool_alloc(bits_bytes(r->cap));
	if (!r->cow)
		return;
	memcpy(r->cow, r->bits, bits_bytes(r->cap));
	struct uffdio_writeprotect wp = {.range = range, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
	if (PFS_NO_EINTR(ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))) {
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
void pfs_regions_after_fork_parent(struct pfs_thread *t)
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

uint64_t pfs_regions_cow_faults(void)
{
	return __atomic_load_n(&cow_faults, __ATOMIC_RELAXED);
}

/*
 * In a forked child: the parent's pagemap descriptor describes the parent,
 * so the child opens its own; every inherited region is announced in the
 * child's log (ALLOC with PFS_ALLOC_INHERITED) and takes a new baseline:
 * pages present at the fork are the parent's touches, not the child's.
 */
void pfs_regions_child(struct pfs_thread *t)
{
	pthread_mutex_init(&regions_mutex, NULL);
	first_touches = 0;
	cow_faults = 0;
	last_scan_found = 0;
	scanner_running = 0; /* it did not survive the fork; pfs_regions_tick starts one when needed */
	last_tick = 0;
	if (!enabled)
		return;
	int fd = open_pagemap();
	if (fd < 0) {
		enabled = 0;
		pfs_warn("fork: cannot open /proc/self/pagemap in the child (%s); first touches are not counted in process %d",
			 strerror(-fd), (int)pfs_proc.pid);
		return;
	}
	close(pagemap_fd);
	pagemap_fd = fd;
	/* The inherited userfaultfd acts on the parent's memory, and the child's mappings lost their registration. */
	if (uffd >= 0)
		close(uffd);
	uffd = -1;
	struct region *r, *tmp;
	huge_skipped_pages = 0;
	HASH_ITER(hh, regions, r, tmp)
	{
		if (!r->owner) /* heaps are charged page by page to their carvers, not as one allocation */
			r->alloc_seq = pfs_track_write_alloc(t, r->kind, r->stack, r->start, r->npages * page_size,
							     r->npages * page_size, 0, 0, PFS_ALLOC_INHERITED);
		r->wp_registered = 0;
		scan_region(r, NULL, 0);
		cow_arm(r);
	}
	cow_note_huge();
}

/*
 * Periodic scans.  A helper thread would make a single-threaded program
 * multi-threaded, and glibc changes behaviour then: malloc starts locking
 * its arenas (a program that allocates in a signal handler, harmless while
 * single-threaded, then deadlocks), unshare(CLONE_NEWUSER) refuses.  So
 * while the program is single-threaded (__libc_single_threaded), scans ride
 * on its own calls into the shim once the interval has passed; the thread
 * starts when the program has threads of its own.  Counts stay exact
 * either way (free, munmap, exec and exit scan what they end); only the
 * time resolution of a single-threaded program's touches is coarser.
 */

static void *scanner_main(void *arg)
{
	(void)arg;
	pfs_tls_busy = 1; /* for life: nothing this thread does is the program's */
	for (;;) {
		struct timespec ts = {(time_t)(scan_ms / 1000), (long)(scan_ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		if (!pfs_active())
			continue;
		struct pfs_thread *t = pfs_thread_get();
		if (t)
			pfs_regions_scan_all(t, PFS_SCAN_PERIODIC);
	}
	return NULL;
}

static void scanner_start(void)
{
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	scanner_running = 1; /* also on failure: one attempt, one message */
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	/* The thread starts with every signal blocked: the program's handlers never run on it. */
	pthread_sigmask(SIG_BLOCK, &all, &old);
	/* The real one: inside the library, pthread_create would bind to the shim's own hook. */
	int err = real_pthread_create ? real_pthread_create(&th, &attr, scanner_main, NULL) : ENOSYS;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err)
		pfs_warn("cannot start the scanner thread (%s); first touches are counted when the program calls "
			 "the allocator and at exit",
			 strerror(err));
}

void pfs_regions_set_interval(unsigned ms)
{
	scan_ms = ms ? ms : PFS_SCAN_MS_DEFAULT;
}

void pfs_regions_tick(struct pfs_thread *t)
{
	if (!enabled || scanner_running || !t)
		return;
	if (!__libc_single_threaded) {
		scanner_start();
		return;
	}
	uint64_t now = pfs_now_ns();
	if (now - last_tick < (uint64_t)scan_ms * 1000000u)
		return;
	last_tick = now;
	pfs_regions_scan_all(t, PFS_SCAN_PERIODIC);
}
