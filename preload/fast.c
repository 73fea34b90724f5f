/*
 * Fast mode (pfs_tracker_fast, tracker.h): page-map scans of the regions
 * (regions.c) for first touches, asynchronous write-protect after a fork
 * for copy-on-write, scans on the program's own calls or a thread
 * (periodic.c).  Memory no hook saw being mapped is found by the scans
 * themselves (an anonymous run in no region) and tracked by its kind from
 * then on (addrspace.c): a thread's stack, another runtime's heap, the
 * shim's own.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "addrspace.h"
#include "alloc_glibc.h"
#include "arena.h"
#include "fdkeep.h"
#include "forkwrites.h"
#include "heap.h"
#include "kcompat.h"
#include "msg.h"
#include "pagemap.h"
#include "periodic.h"
#include "probe.h"
#include "real.h"
#include "regions.h"
#include "thread.h"
#include "tracker.h"

static int enabled;
static int adopting; /* the memory held at start is handed over: baselines wait for fast_adopted */
static uint64_t page_size = 4096;
static int last_scan_found; /* the previous periodic pass found touches: write the next one even if empty */
static uint64_t pass_not_before; /* no periodic pass before then (periodic_scan) */
static struct pfs_fd uffd = PFS_FD_INIT(521, NULL, 0); /* asynchronous write-protect, for copy-on-write after fork */
static uint64_t uffd_gen = 1; /* of that descriptor; a region's wp_gen 0 (none in a forked child) is never registered */
static int cow_failed; /* said once: copy-on-write is not counted */
/*
 * Fault events feeding the regions (pevent.c), drained before every count
 * (regions lock held), or NULL.  See pfs_fast_feed (regions.h).
 */
static void (*feed)(struct pfs_thread *t);
#define FEED(t) (feed ? feed(t) : (void)0)

void pfs_fast_feed(void (*drain)(struct pfs_thread *t))
{
	feed = drain;
}

static int fast_init(const char **why)
{
	page_size = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	int how = pfs_proc.cfg.pagemap;
	int first = pfs_proc.cfg.run_pid == 0;
	int scan_ok = how != PFS_PAGEMAP_READ && pfs_probe_pagemap_scan_fd(pfs_pagemap_fd()) == 1;
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
	/*
	 * a loaded machine's waits, for the analyzer's storms: a sample every
	 * 50 ms is enough; the end's is PROC_END's, which follows
	 */
	uint64_t run;
	int flags = 0;
	rec->wait_ns = 0;
	if (reason != PFS_SCAN_END && pfs_wait_due(start))
		flags = pfs_schedstat(&run, &rec->wait_ns) == 0 ? PFS_SCAN_WAIT : 0;
	pfs_rec_end(rec, PFS_REC_SCAN, flags, sizeof(*rec));
}

/*
 * A region of its own for [addr, addr + len), page-rounded outwards, its
 * pages held now its baseline.  Older regions it overlaps (stale ones whose
 * end the shim did not see, MAP_FIXED over them) are dropped; heaps stay.
 * regions lock held.
 */
static struct region *add_region(uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack, int kind,
				 unsigned mem, int baseline)
{
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	for (uint64_t i = pfs_regions_from(start); i < pfs_regions_count();) {
		struct region *r = pfs_region_at(i);
		if (r->start >= end)
			break;
		if (!r->owner)
			pfs_region_free(r);
		else
			i++;
	}
	struct region *r = pfs_region_new(start, (end - start) / page_size, alloc_seq, stack, kind, mem);
	if (!r)
		return NULL;
	if (baseline)
		pfs_region_scan(r, NULL, 0); /* pages held before the program touched anything */
	return r;
}

/*
 * Mappings a pass finds held but leaves alone (kind 0: files' pages the
 * program reads, shared memory, malloc's own, every object's RELRO pages),
 * so that the next pass skips them without reading /proc/self/maps again.
 * The pass reads every mapping's page tables (asking the kernel to leave
 * file pages out makes it look up each page's struct page: five times the
 * cost of the walk, measured), so they come with every pass: all of them
 * are noted with one read of the maps (ignored_fill), sorted by address.
 * An entry goes when a hook maps or unmaps over it, and all of them once a
 * second (a mapping no hook saw may take the place of one).  Regions'
 * lock held.
 */
#define IGNORED_MAX 8192 /* a program with hundreds of libraries has thousands of mappings */
static struct {
	uint64_t lo, hi;
} ignored[IGNORED_MAX];
static unsigned nignored;
static uint64_t ignored_since;
static int ignored_filled; /* the maps' kind-0 mappings are in the table (ignored_fill) */

/* The index of the first entry starting after addr. */
static unsigned ignored_after(uint64_t addr)
{
	unsigned lo = 0, hi = nignored;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (ignored[mid].lo <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void ignored_forget(uint64_t lo, uint64_t hi)
{
	unsigned i = ignored_after(lo), j;
	if (i > 0 && ignored[i - 1].hi > lo)
		i--;
	for (j = i; j < nignored && ignored[j].lo < hi; j++)
		;
	memmove(&ignored[i], &ignored[j], (nignored - j) * sizeof(ignored[0]));
	nignored -= j - i;
}

/* The end of the ignored mapping holding addr, or 0. */
static uint64_t ignored_find(uint64_t addr)
{
	unsigned i = ignored_after(addr);
	return i > 0 && addr < ignored[i - 1].hi ? ignored[i - 1].hi : 0;
}

/* The same, the table emptied first when it is a second old. */
static uint64_t ignored_end(uint64_t addr, uint64_t now)
{
	if (now - ignored_since > 1000000000ull) {
		nignored = 0;
		ignored_filled = 0;
		ignored_since = now;
	}
	return ignored_find(addr);
}

static void ignored_add(uint64_t lo, uint64_t hi)
{
	if (nignored == IGNORED_MAX || lo >= hi)
		return;
	unsigned i = ignored_after(lo);
	memmove(&ignored[i + 1], &ignored[i], (nignored - i) * sizeof(ignored[0]));
	ignored[i].lo = lo;
	ignored[i].hi = hi;
	nignored++;
}

/* A fill of the table, and the mapping it met holding one address (with the one before it). */
struct fill {
	uint64_t addr;
	struct pfs_mapping *m, *prev;
	int found;
};

/* A mapping of the maps: noted when it is one that passes leave alone. */
static void ignored_note(const struct pfs_mapping *m, const struct pfs_mapping *prev)
{
	uint64_t end;
	if (!pfs_addrspace_kind(m, prev, 0, &end) && !ignored_find(m->start))
		ignored_add(m->start, m->end);
}

static int fill_fn(const struct pfs_mapping *m, const struct pfs_mapping *prev, void *arg)
{
	struct fill *f = arg;
	ignored_note(m, prev);
	if (m->start <= f->addr && f->addr < m->end) {
		*f->m = *m;
		*f->prev = *prev;
		f->found = 1;
	}
	return 0;
}

/*
 * Every mapping of kind 0 noted with one read of the maps, and the mapping
 * holding `addr` found in the same read: at most once a pass (`now`), so
 * that mappings made since by no hook (libc maps the locale's files) cost
 * one read of the maps, not one each.  1 when *m is addr's mapping.
 */
static uint64_t ignored_filled_at;

static int ignored_fill(uint64_t now, uint64_t addr, struct pfs_mapping *m, struct pfs_mapping *prev)
{
	if (ignored_filled && ignored_filled_at == now)
		return 0;
	ignored_filled = 1;
	ignored_filled_at = now;
	struct fill f = {addr, m, prev, 0};
	pfs_addrspace_each(fill_fn, &f);
	return f.found;
}

/*
 * The start's walk of the maps fills the table as ignored_fill would: the
 * first pass that met a file's pages read the maps a second time (at
 * /bin/true's exit, for its own text).
 */
static void fast_seen(const struct pfs_mapping *m, const struct pfs_mapping *prev)
{
	if (!enabled)
		return;
	pfs_regions_lock();
	if (!ignored_filled) {
		nignored = 0;
		ignored_filled = 1;
		ignored_since = pfs_now_ns();
	}
	ignored_note(m, prev);
	pfs_regions_unlock();
}

static void fast_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack,
		     int kind, unsigned mem)
{
	(void)t;
	if (!enabled || !len)
		return;
	int saved = errno;
	pfs_regions_lock();
	FEED(t); /* events of a stale region it replaces, first */
	ignored_forget(addr, addr + len);
	struct region *r = add_region(addr, len, alloc_seq, stack, kind, mem & ~PFS_MEM_TOUCHED, !adopting);
	if (r && (mem & PFS_MEM_TOUCHED) && !adopting)
		pfs_region_held_touched(r, t, pfs_now_ns());
	pfs_regions_unlock();
	errno = saved;
}

/*
 * What the process held at start, handed over: the baselines of all its
 * regions in one walk (one PAGEMAP_SCAN, not one a mapping: 17 for
 * /bin/true).
 */
static void fast_adopted(struct pfs_thread *t, int touched)
{
	if (!enabled || !adopting)
		return;
	int saved = errno;
	pfs_regions_lock();
	adopting = 0;
	FEED(t);
	pfs_regions_pass(NULL, 0, NULL, NULL);
	/*
	 * What allocators made before the shim started (anonymous memory, the
	 * heap) was first touched by this image: counted.  The loader's own
	 * writes (relocations in the objects' data, the stack's start) are the
	 * baseline, as before: no allocation's doing, and they would head
	 * every small program's report.
	 */
	for (uint64_t i = 0, now = pfs_now_ns(); touched && i < pfs_regions_count(); i++)
		if (pfs_region_at(i)->kind == PFS_KIND_PRESTART)
			pfs_region_held_touched(pfs_region_at(i), t, now);
	pfs_regions_unlock();
	errno = saved;
}

static void fast_free_at(struct pfs_thread *t, uint64_t addr)
{
	if (!enabled)
		return;
	int saved = errno;
	pfs_regions_lock();
	FEED(t);
	struct region *r = pfs_region_starting(addr);
	if (r && !r->owner) { /* a heap block in a heap's first page: the heap stays */
		pfs_region_scan(r, t, pfs_now_ns());
		pfs_region_free(r);
	}
	pfs_regions_unlock();
	errno = saved;
}

/* A new region for [from, to) of r, with what r held there. */
static void keep_part(const struct region *r, uint64_t from, uint64_t to)
{
	uint64_t first = (from - r->start) / page_size;
	struct region *p = pfs_region_new(from, (to - from) / page_size, r->alloc_seq, r->stack, r->kind,
					  pfs_region_mem(r));
	if (!p)
		return;
	p->onfork = r->onfork;
	p->huge = r->huge;
	pfs_bits_copy(&p->bits, 0, &r->bits, first, first + p->npages);
}

/*
 * The regions that [start, end) covers part of are cut at its edges (the
 * parts outside keep what they held): afterwards every region overlapping
 * [start, end) lies inside it.  Heaps are glibc's and stay whole.  regions
 * lock held.
 */
static void cut_at(uint64_t start, uint64_t end)
{
	for (uint64_t i = pfs_regions_from(start); i < pfs_regions_count();) {
		struct region *r = pfs_region_at(i);
		uint64_t rend = pfs_region_end(r);
		if (r->start >= end)
			break;
		if (r->owner || (r->start >= start && rend <= end)) {
			i++;
			continue;
		}
		uint64_t lo = r->start > start ? r->start : start, hi = rend < end ? rend : end;
		if (r->start < start)
			keep_part(r, r->start, start);
		keep_part(r, lo, hi);
		if (rend > end)
			keep_part(r, end, rend);
		pfs_region_free(r);
		i = pfs_regions_from(start);
	}
}

/*
 * Extents (heap.h) that [start, end) unmaps, which heap.c forgot: read with
 * their owners, then plain regions of their mappings, cut like any.
 */
static void extents_plain(struct pfs_thread *t, uint64_t start, uint64_t end, uint64_t now)
{
	for (uint64_t i = pfs_regions_from(start); i < pfs_regions_count(); i++) {
		struct region *r = pfs_region_at(i);
		if (r->start >= end)
			break;
		if (r->extent) {
			pfs_region_scan(r, t, now);
			pfs_pool_free(r->owner, r->cap * sizeof(*r->owner));
			r->owner = NULL;
			r->extent = 0;
			r->span_end = 0;
		}
	}
}

/* [start, end) goes: the regions it covers are read a last time and dropped; the parts outside stay. */
static void fast_unmap(struct pfs_thread *t, uint64_t addr, uint64_t len)
{
	if (!enabled || !len)
		return;
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	uint64_t now = pfs_now_ns();
	int saved = errno;
	pfs_regions_lock();
	FEED(t);
	ignored_forget(start, end);
	extents_plain(t, start, end, now);
	cut_at(start, end);
	for (uint64_t i = pfs_regions_from(start); i < pfs_regions_count();) {
		struct region *r = pfs_region_at(i);
		if (r->start >= end)
			break;
		if (r->owner) { /* heaps are glibc's: not unmapped by the program */
			i++;
			continue;
		}
		pfs_region_scan(r, t, now);
		pfs_region_free(r);
	}
	pfs_regions_unlock();
	errno = saved;
}

static void fast_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len)
{
	(void)t, (void)old_len;
	if (!enabled)
		return;
	int saved = errno;
	pfs_regions_lock();
	FEED(t);
	struct region *r = pfs_region_starting(old);
	if (r && !r->owner) {
		struct region moved = *r;
		pfs_region_free(r);
		/* The moved pages are held at the new place: the new baseline, not first touches. */
		add_region(new_addr, new_len, moved.alloc_seq, moved.stack, moved.kind, pfs_region_mem(&moved), 1);
	}
	pfs_regions_unlock();
	errno = saved;
}

static void fast_sync(struct pfs_thread *t, uint64_t addr, uint64_t len, int reason)
{
	if (!enabled || !len)
		return;
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	uint64_t now = pfs_now_ns(), fresh = 0;
	uint32_t n = 0;
	int saved = errno;
	pfs_regions_lock();
	FEED(t);
	for (uint64_t i = pfs_regions_from(start); i < pfs_regions_count() && pfs_region_at(i)->start < end; i++) {
		fresh += pfs_region_scan(pfs_region_at(i), t, now);
		n++;
	}
	if (fresh)
		write_scan(t, now, fresh, n, reason);
	pfs_regions_unlock();
	errno = saved;
}

/*
 * An anonymous run [from, to) that no region holds: memory no hook saw
 * being mapped.  Its mapping tells what it is (addrspace.c); a region of
 * that kind is made of the part no region covers, logged (ALLOC of its
 * kind), and the run counted as its first touches.  Runs inside a heap's
 * reach are malloc's own (its top chunk, an arena's header): left alone.
 */
static uint64_t heap_reach_end(uint64_t addr)
{
	for (uint64_t i = pfs_regions_from(0); i < pfs_regions_count(); i++) {
		struct region *r = pfs_region_at(i);
		if (r->start > addr)
			break;
		if (!r->owner)
			continue;
		uint64_t end = r->span_end == UINT64_MAX && real_sbrk ? (uint64_t)(uintptr_t)real_sbrk(0) : r->span_end;
		if (addr < end)
			return end;
	}
	return 0;
}

static uint64_t found_unknown(struct pfs_thread *t, uint64_t now, uint64_t from, uint64_t to)
{
	uint64_t faults = 0;
	while (from < to) {
		struct pfs_mapping m, prev;
		uint64_t lo, hi;
		int kind;
		/*
		 * The shim's own is known by its own range, not the kernel's
		 * merged mapping: no read of the maps, and no entry of the
		 * ignored table hides it (one made stale by a mapping the shim
		 * made itself, which no hook tells the tracker of: its scanner
		 * thread's stack, whose descriptor the fork writes in the child).
		 */
		int self = pfs_self_find(from, &lo, &hi);
		if (!self && (hi = ignored_end(from, now)) != 0) {
			from = hi;
			continue;
		}
		/*
		 * The log's own mapping, new in every forked child: left alone
		 * as a file's shared mapping is, without reading the maps for
		 * it.  (Forked children of a bash loop read the maps before
		 * every exec, for this and the shim's own new memory: a system
		 * call reading every mapping, 5 KiB of stack, pages of the
		 * table.)
		 */
		if (!self && pfs_log_segment_at(&pfs_log_proc, from, &lo, &hi)) {
			ignored_add(lo, hi);
			from = hi;
			continue;
		}
		int read = !self && ignored_fill(now, from, &m, &prev); /* m: from's mapping, when this read the maps */
		if (!self && (hi = ignored_find(from)) != 0) {
			from = hi;
			continue;
		}
		if (!self && (hi = heap_reach_end(from)) != 0) {
			from = (hi + page_size - 1) & ~(page_size - 1);
			continue;
		}
		if (self) {
			memset(&m, 0, sizeof(m));
			m.start = lo;
			m.end = hi;
			m.prot = PROT_READ | PROT_WRITE;
			kind = PFS_KIND_SELF;
		} else if (read || pfs_addrspace_find(from, &m, &prev) == 0) {
			uint64_t kind_end; /* m->end: a .bss is cut at its image's end at the start only */
			kind = pfs_addrspace_kind(&m, &prev, 0, &kind_end);
			/* A thread arena's heap (64 MiB-aligned) before its first block is carved: malloc's own. */
			if (pfs_alloc_is_glibc && !(m.start & (PFS_HEAP_MAX - 1)) && m.end - m.start <= PFS_HEAP_MAX)
				kind = 0;
			if (pfs_self_next(from) < m.end) /* a range of the shim's own in the same merged mapping */
				m.end = pfs_self_next(from);
		} else {
			from += page_size;
			continue;
		}
		uint64_t end = m.end < to ? m.end : to;
		if (kind) {
			/* the mapping's part that no region covers, around the run */
			uint64_t i = pfs_regions_from(from);
			lo = m.start;
			hi = m.end;
			if (i < pfs_regions_count() && pfs_region_at(i)->start < hi)
				hi = pfs_region_at(i)->start;
			if (i > 0 && pfs_region_end(pfs_region_at(i - 1)) > lo)
				lo = pfs_region_end(pfs_region_at(i - 1));
			if (lo < hi && from >= lo && end <= hi) {
				uint64_t seq = t ? pfs_rec_alloc(&t->w, t->tid, kind, 0, lo, hi - lo, hi - lo, m.prot, 0,
								 PFS_ALLOC_CATEGORY)
						 : 0;
				struct region *r = add_region(lo, hi - lo, seq, 0, kind, PFS_MEM_COWABLE, 0);
				if (r)
					faults += pfs_region_found(r, t, now, from, end);
			}
		} else {
			ignored_add(m.start, m.end);
		}
		from = end;
	}
	return faults;
}

/*
 * A pass walks the page tables of every mapping, and files' pages cost as
 * much there as the program's memory: cc1's own text (22 MiB held, against
 * 52 MiB of its anonymous memory) was a third of each pass.  The ignored
 * mappings (adjacent ones merged) of at least PASS_SKIP_MIN with no region
 * in them are left out of the walk: found_unknown would leave their runs
 * alone.  Not once the table is a second old: that walk finds them again
 * (ignored_end empties it).  Regions' lock held.
 */
#define PASS_SKIP_MIN (1u << 20)

static int pass_skip(uint64_t from, uint64_t now, uint64_t *lo, uint64_t *hi)
{
	if (!ignored_filled || now - ignored_since > 1000000000ull)
		return 0;
	unsigned i = ignored_after(from);
	if (i > 0 && ignored[i - 1].hi > from)
		i--;
	while (i < nignored) {
		uint64_t a = ignored[i].lo > from ? ignored[i].lo : from, b = ignored[i].hi;
		for (i++; i < nignored && ignored[i].lo == b; i++)
			b = ignored[i].hi;
		if (b - a < PASS_SKIP_MIN)
			continue;
		uint64_t k = pfs_regions_from(a); /* a region reaching into it first */
		if (k < pfs_regions_count() && pfs_region_at(k)->start < b)
			continue; /* a heap carved in malloc's own mapping */
		*lo = a;
		*hi = b;
		return 1;
	}
	return 0;
}

uint64_t pfs_regions_scan_all(struct pfs_thread *t, int reason)
{
	if (!enabled)
		return 0;
	uint64_t now = pfs_now_ns();
	int saved = errno;
	pfs_regions_lock();
	FEED(t); /* what the events said first: the page map's count finds only what they did not */
	uint64_t fresh = pfs_regions_pass(t, now, found_unknown, pass_skip);
	uint32_t n = (uint32_t)pfs_regions_count();
	/* Empty periodic passes are written only where they end a burst: rates over time need the edges. */
	if (n && (fresh || last_scan_found || reason != PFS_SCAN_PERIODIC))
		write_scan(t, now, fresh, n, reason);
	last_scan_found = fresh != 0;
	pfs_regions_unlock();
	errno = saved;
	return fresh;
}

static void fast_counts(uint64_t *first, uint64_t *cow)
{
	pfs_regions_counts(first, cow);
}

/*
 * Heaps (heap.c carves them): each is one region that grows with its mark,
 * with the site that carved each page; a scan charges each page that became
 * held to its owner.  Its reach: a thread arena's heap is 64 MiB at most,
 * the brk heap ends at the break.
 */
static struct region *heap_region(struct pfs_heap *h)
{
	if (h->priv)
		return h->priv;
	struct region *r = pfs_region_new(h->start, 0, 0, 0, PFS_KIND_MALLOC, PFS_MEM_COWABLE);
	if (!r)
		return NULL;
	r->owner = pfs_pool_alloc(r->cap * sizeof(*r->owner));
	if (!r->owner) {
		pfs_region_free(r);
		return NULL;
	}
	r->span_end = h->key == PFS_HEAP_MAIN ? UINT64_MAX /* the break */ : h->key + PFS_HEAP_MAX;
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
	pfs_regions_lock();
	struct region *r = heap_region(h);
	uint64_t i = (from - h->start) / page_size, n = (to - h->start) / page_size;
	if (r && pfs_region_grow(r, n) == 0) {
		for (; i < n; i++) {
			r->owner[i].stack = stack;
			r->owner[i].kind = (uint8_t)kind;
		}
		if (n > r->npages)
			r->npages = n;
	}
	pfs_regions_unlock();
}

/* Another allocator's extent (heap.h): its mapping's region gets owners, the mapping's site at first. */
static int fast_extent(struct pfs_heap *h, uint64_t len)
{
	if (!enabled)
		return -1;
	pfs_regions_lock();
	struct region *r = pfs_region_starting(h->start);
	int ok = r && !r->owner && r->start == h->start && r->npages * page_size == len && r->cap >= r->npages &&
		 (r->owner = pfs_pool_alloc(r->cap * sizeof(*r->owner))) != NULL;
	if (ok) {
		for (uint64_t i = 0; i < r->cap; i++) {
			r->owner[i].stack = r->stack;
			r->owner[i].kind = r->kind;
		}
		r->extent = 1;
		r->span_end = pfs_region_end(r);
		h->priv = r;
	}
	pfs_regions_unlock();
	return ok ? 0 : -1;
}

static void fast_heap_prefaulted(struct pfs_heap *h, uint64_t start, uint64_t end)
{
	if (!enabled)
		return;
	pfs_regions_lock();
	struct region *r = h->priv;
	/* Held now, so not first touches; a page the policy did not make present is cleared by the next scan. */
	if (r && start >= r->start && end <= pfs_region_end(r))
		pfs_bits_set_count(&r->bits, (start - r->start) / page_size, (end - r->start) / page_size);
	pfs_regions_unlock();
}

static void fast_heap_released(struct pfs_heap *h, uint64_t start, uint64_t end)
{
	if (!enabled)
		return;
	pfs_regions_lock();
	struct region *r = h->priv;
	if (r && start < pfs_region_end(r) && end > r->start) {
		uint64_t from = start > r->start ? start : r->start, to = end < pfs_region_end(r) ? end : pfs_region_end(r);
		pfs_bits_clear(&r->bits, (from - r->start) / page_size, (to - r->start) / page_size);
		pfs_region_cow_clear(r, (from - r->start) / page_size, (to - r->start) / page_size);
	}
	pfs_regions_unlock();
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
	if (pfs_sys_ioctl(fd, UFFDIO_API, &api)) {
		int err = -errno;
		close(fd);
		return err;
	}
	fd = pfs_fd_keep(&uffd, fd);
	uffd_gen++; /* a new descriptor: every region registers again */
	return fd < 0 ? fd : 0;
}

/* At a fork, in both processes: what a region holds now is shared; protect it. regions lock held. */
static uint64_t huge_skipped_pages; /* huge-page memory whose copy-on-write is not counted */

/* What cow_arm found a region to need at a fork: nothing, protection, registration then protection. */
enum { ARM_NONE, ARM_PROTECT, ARM_REGISTER };

/* The pages r holds now are the ones a fork shares (r->cow); 0 when out of memory. */
static int cow_note_held(struct region *r)
{
	if (!pfs_region_cow(r))
		return 0;
	pfs_bits_copy(&r->cow->bits, 0, &r->bits, 0, r->npages);
	r->cow->left = pfs_bits_count(&r->cow->bits);
	return 1;
}

/*
 * What r needs for the fork (ARM_*): ARM_PROTECT when it is registered
 * and its held pages are noted as shared; ARM_REGISTER when it is to be
 * registered first (cow_registered notes its pages then): adjacent regions
 * are registered by one call (cow_run), as they are protected (a bash
 * child registered its 12 regions in 12 calls, 8 runs).  `*fd_ok`: the
 * descriptor checked once for the whole walk (an fstat each time was 19
 * system calls per fork of a bash loop), opened here when the first region
 * needs it.
 */
static int cow_arm(struct region *r, int *fd_ok)
{
	/*
	 * The shim's own memory is not protected: its copies are not counted
	 * (kept apart anyway, [pfshim]), as in exact mode.  Protected, its hot
	 * pages took two faults at every fork, the copy and then the protection
	 * (the shim writes them before arming, and again after), in both the
	 * parent and the child.
	 */
	if (!r->cowable || cow_failed || r->onfork != PFS_ONFORK_SHARE || r->kind == PFS_KIND_SELF)
		return ARM_NONE;
	if (feed) { /* the first fault after the fork on a page held then is its copy: nothing protected */
		cow_note_held(r);
		return ARM_NONE;
	}
	/*
	 * Write-protecting a transparent huge page splits it at its first write
	 * (measured): arming would change the program's memory.  Its
	 * copy-on-write is not counted; said once per fork (cow_note_huge).
	 */
	if (r->huge) {
		huge_skipped_pages += r->npages;
		pfs_region_cow_free(r);
		return ARM_NONE;
	}
	/*
	 * Protected at the last fork and nothing written or newly held since (every
	 * page held is still noted as shared, so still protected): protecting it
	 * again would only walk its page tables again.  fork_cow's parent spent
	 * 29% of its time there, forking 100 children of 64 MiB.
	 */
	if (r->cow && r->cow->wp_gen == uffd_gen && *fd_ok && r->cow->left == pfs_bits_count(&r->bits))
		return ARM_NONE;
	if (!*fd_ok) {
		int err = cow_open();
		if (err) {
			cow_failed = 1;
			pfs_warn("copy-on-write after fork is not counted in process %d: asynchronous write-protect is "
				 "not available (%s)",
				 (int)pfs_proc.pid, strerror(-err));
			return ARM_NONE;
		}
		*fd_ok = 1;
	}
	struct pfs_cow *c = r->npages ? pfs_region_cow(r) : NULL;
	if (!c)
		return ARM_NONE;
	/*
	 * Registered with this descriptor as far as the region reaches now.  A
	 * heap that grew is registered again, all of it (cow_registered): its
	 * new part is a mapping of its own to the kernel, not registered (a
	 * bash loop's heap was registered again at every fork, grown or not).
	 */
	if (c->wp_gen != uffd_gen || r->npages > c->reg_pages)
		return ARM_REGISTER;
	return cow_note_held(r) ? ARM_PROTECT : ARM_NONE;
}

static int cow_register(uint64_t start, uint64_t end)
{
	struct uffdio_register reg = {.range = {.start = start, .len = end - start}, .mode = UFFDIO_REGISTER_MODE_WP};
	return PFS_NO_EINTR(pfs_sys_ioctl(uffd.fd, UFFDIO_REGISTER, &reg));
}

static int cow_protect(uint64_t start, uint64_t end)
{
	struct uffdio_writeprotect wp = {.range = {.start = start, .len = end - start}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
	return PFS_NO_EINTR(pfs_sys_ioctl(uffd.fd, UFFDIO_WRITEPROTECT, &wp));
}

/*
 * `call` over regions [from, to) (adjacent) by one system call, each region
 * on its own when that fails; then done(r, whether it worked for r).
 */
static void cow_run(uint64_t from, uint64_t to, int (*call)(uint64_t, uint64_t), void (*done)(struct region *, int))
{
	if (from == to)
		return;
	int all = !call(pfs_region_at(from)->start, pfs_region_end(pfs_region_at(to - 1)));
	for (uint64_t i = from; i < to; i++) {
		struct region *r = pfs_region_at(i);
		done(r, all || (to - from > 1 && !call(r->start, pfs_region_end(r))));
	}
}

/*
 * Registered (ARM_REGISTER), its held pages noted as shared then; or
 * registered before (a heap registered again).  One that cannot be
 * registered (not a kind of memory the kernel protects) is left out: its
 * protection fails too, and cow_protected drops it.
 */
static void cow_registered(struct region *r, int ok)
{
	if (ok) {
		r->cow->wp_gen = uffd_gen;
		r->cow->reg_pages = r->npages;
	}
	if (r->cow->wp_gen == uffd_gen)
		cow_note_held(r);
}

/*
 * One that cannot be protected is registered again first (a mapping no hook
 * saw replaced part of it, a heap given back to the kernel grew again: the
 * kernel's mapping is new, not registered); one that still cannot is not
 * counted.
 */
static void cow_protected(struct region *r, int ok)
{
	uint64_t end = pfs_region_end(r);
	if (!ok && !cow_register(r->start, end)) {
		cow_registered(r, 1); /* its held pages noted as shared, if they were not (a registration that had failed) */
		ok = !cow_protect(r->start, end);
	}
	if (!ok)
		pfs_region_cow_free(r);
}

static void cow_note_huge(void)
{
	if (huge_skipped_pages)
		pfs_warn("fork: copy-on-write of %llu MiB of transparent huge pages is not counted in process %d "
			 "(write-protecting them would split them)",
			 (unsigned long long)(huge_skipped_pages * page_size >> 20), (int)pfs_proc.pid);
}

/*
 * Every region armed for the fork. regions lock held.  Adjacent regions are
 * protected by one call: the kernel flushes the TLB once per call and
 * mapping it changed, and a flush costs tens of microseconds on this kind of
 * virtual machine (a remote one in the parent, whose memory another CPU may
 * hold).  Small adjacent mappings are one mapping to the kernel.
 */
static void arm_all(void)
{
	int fd_ok = !cow_failed && !feed && pfs_fd_ok(&uffd);
	uint64_t from = 0, to = 0;   /* the run of adjacent regions to protect */
	uint64_t rfrom = 0, rto = 0; /* the run of them to register first, within it */
	for (uint64_t i = 0; i < pfs_regions_count(); i++) {
		struct region *r = pfs_region_at(i);
		int need = cow_arm(r, &fd_ok);
		if (need == ARM_NONE)
			continue;
		if (to != i || from == to || pfs_region_end(pfs_region_at(to - 1)) != r->start) {
			cow_run(rfrom, rto, cow_register, cow_registered);
			rfrom = rto = i;
			cow_run(from, to, cow_protect, cow_protected);
			from = i;
		}
		to = i + 1;
		if (need == ARM_REGISTER) {
			if (rto != i) {
				cow_run(rfrom, rto, cow_register, cow_registered);
				rfrom = i;
			}
			rto = i + 1;
		}
	}
	cow_run(rfrom, rto, cow_register, cow_registered);
	cow_run(from, to, cow_protect, cow_protected);
}

/*
 * The parent after a fork: its touches so far are counted, then every
 * region is armed.  The pass before the fork (fast_lock) is not enough,
 * even in a single-threaded program: libc's fork and the shim's handlers
 * write pages of their own between it and the fork (a copy, to be counted
 * and protected again).
 */
static void fast_fork_parent(struct pfs_thread *t)
{
	if (!enabled)
		return;
	uint64_t now = pfs_now_ns();
	int saved = errno;
	pfs_regions_lock();
	huge_skipped_pages = 0;
	FEED(t);
	pfs_regions_pass(t, now, found_unknown, pass_skip);
	if (!feed) /* with fault events, armed as the lock was released (fast_unlock) */
		arm_all();
	cow_note_huge();
	pfs_regions_unlock();
	errno = saved;
}

/*
 * Pages the fork wrote in the child before its regions are armed
 * (forkwrites.h): those held at the fork (the parent's last pass, inherited)
 * are copies, counted once the regions are armed and announced; the others
 * are left out.  Returns how many are kept, in place.
 */
#define FORK_WRITTEN_MAX 1027u /* forkwrites.c: its own 3 and 1,024 threads */
#define FORK_WRITTEN_FEW 16u
static unsigned fork_written_held(uint64_t *pages, unsigned n)
{
	unsigned kept = 0;
	for (unsigned k = 0; k < n; k++) {
		struct region *r = pfs_region_holding(pages[k]);
		if (r && r->cowable && pfs_bits_get(&r->bits, (pages[k] - r->start) / page_size))
			pages[kept++] = pages[k];
	}
	return kept;
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
	pfs_regions_child();
	last_scan_found = 0;
	pass_not_before = 0;
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
	huge_skipped_pages = 0;
	for (uint64_t i = 0; i < pfs_regions_count();) {
		struct region *r = pfs_region_at(i);
		if (r->onfork == PFS_ONFORK_NONE) { /* not in the child at all */
			pfs_region_free(r);
			continue;
		}
		i++;
	}
	/*
	 * Every region's baseline in one walk (a wiped region holds nothing
	 * here), each armed, then announced: the log's pages written for that
	 * after they are protected are copies, as the kernel counts them.
	 */
	/*
	 * A few on the stack: 8 KiB there put every frame below (the pass, the
	 * arming) on two pages further down, copies in the child (2 page
	 * faults a fork of a bash loop).  A program with many threads takes
	 * the static table.
	 */
	uint64_t few[FORK_WRITTEN_FEW];
	static uint64_t many[FORK_WRITTEN_MAX];
	unsigned cap = pfs_forkwrites_bound() <= FORK_WRITTEN_FEW ? FORK_WRITTEN_FEW : FORK_WRITTEN_MAX;
	uint64_t *written = cap == FORK_WRITTEN_FEW ? few : many;
	unsigned nwritten = fork_written_held(written, pfs_forkwrites_child(written, cap));
	pfs_regions_pass(NULL, 0, NULL, NULL);
	arm_all();
	for (uint64_t i = 0; i < pfs_regions_count(); i++) {
		struct region *r = pfs_region_at(i);
		if (!r->owner) /* heaps are charged page by page to their carvers, not as one allocation */
			announce(t, &r->alloc_seq, r->kind, r->stack, r->start, r->npages * page_size);
	}
	uint64_t now = pfs_now_ns();
	for (unsigned k = 0; k < nwritten; k++) {
		struct region *r = pfs_region_holding(written[k]);
		if (r)
			pfs_region_copied(r, t, now, (written[k] - r->start) / page_size);
	}
	cow_note_huge();
}

/*
 * A pass costs what the address space holds (the kernel walks the page
 * tables of all anonymous memory), whatever changed: with 12,000 live
 * mappings, or gcc's cc1, passes every 10 ms took half the program's time.
 * So the next periodic pass waits at least PASS_SHARE times as long as the
 * last one took: passes take at most about a tenth of the time.  Counts
 * stay exact (free, munmap, madvise, a heap trim, fork, exec and exit read
 * what they end); only the times of touches are coarser then.
 */
#define PASS_SHARE 9

static void periodic_scan(struct pfs_thread *t)
{
	uint64_t start = pfs_now_ns();
	if (start < pass_not_before)
		return;
	pfs_regions_scan_all(t, PFS_SCAN_PERIODIC);
	uint64_t end = pfs_now_ns();
	pass_not_before = end + (end - start) * PASS_SHARE;
}

static int fast_start(const char **why)
{
	(void)why;
	/* Its head is written at once (the adoption's mappings to leave alone): two pages, at no page boundary. */
	pfs_prefault(ignored, 64 * sizeof(ignored[0]), MADV_POPULATE_WRITE);
	pfs_periodic_set(periodic_scan, pfs_proc.cfg.scan_ms);
	enabled = 1;
	adopting = 1;
	return 0;
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

/* Advice that makes pages present without a fault (get_user_pages: no exception, no fault in the kernel's count). */
static int populates(int advice)
{
	return advice == MADV_POPULATE_READ || advice == MADV_POPULATE_WRITE;
}

/*
 * Before advice that drops pages or populates them: what the range held is
 * counted first; after it, what was dropped is forgotten, what was
 * populated is the baseline (populate_baseline).
 */
static void fast_advising(struct pfs_thread *t, uint64_t addr, uint64_t len, int advice)
{
	if (drops_pages(advice) || populates(advice))
		fast_sync(t, addr, len, PFS_SCAN_MADVISE);
}

/*
 * The range's mappings after the program (or a policy) populated them:
 * their pages are held without a fault, a baseline, not first touches
 * (the program's own prefaulting, as MAP_POPULATE's).  Heaps are left to
 * their carving (a policy's populated block: pfs_heap_prefaulted).
 */
static void populate_baseline(struct pfs_thread *t, uint64_t addr, uint64_t len)
{
	if (!enabled || !len)
		return;
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	int saved = errno;
	pfs_regions_lock();
	FEED(t);
	for (uint64_t i = pfs_regions_from(start); i < pfs_regions_count() && pfs_region_at(i)->start < end; i++)
		if (!pfs_region_at(i)->owner)
			pfs_region_scan(pfs_region_at(i), NULL, 0);
	pfs_regions_unlock();
	errno = saved;
}

/*
 * What a fork will do with the range: V8 marks its heap MADV_DONTFORK, and
 * memory a fork does not share is not written as a copy afterwards (node's
 * parent took 14 times its native write faults when the shim armed it).
 */
static void fast_advised(struct pfs_thread *t, uint64_t addr, uint64_t len, int advice)
{
	int onfork = advice == MADV_DONTFORK ? PFS_ONFORK_NONE
		     : advice == MADV_WIPEONFORK ? PFS_ONFORK_WIPE
		     : advice == MADV_DOFORK || advice == MADV_KEEPONFORK ? PFS_ONFORK_SHARE : -1;
	if (drops_pages(advice))
		fast_sync(t, addr, len, PFS_SCAN_MADVISE);
	if (populates(advice))
		populate_baseline(t, addr, len);
	if (onfork < 0 || !enabled || !len)
		return;
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	pfs_regions_lock();
	cut_at(start, end);
	for (uint64_t i = pfs_regions_from(start); i < pfs_regions_count() && pfs_region_at(i)->start < end; i++) {
		struct region *r = pfs_region_at(i);
		/* DOFORK undoes DONTFORK only, KEEPONFORK WIPEONFORK only */
		if (advice == MADV_DOFORK ? r->onfork == PFS_ONFORK_NONE
		    : advice == MADV_KEEPONFORK ? r->onfork == PFS_ONFORK_WIPE : !r->owner)
			r->onfork = (uint8_t)onfork;
	}
	pfs_regions_unlock();
}

static void fast_end(struct pfs_thread *t)
{
	pfs_regions_scan_all(t, PFS_SCAN_END); /* touches since the last scan */
}

/*
 * Before a fork: the tops of the thread stacks whose top pages are held,
 * where glibc's fork will mark the threads' descriptors free in the child
 * (forkwrites.h).  Regions lock held.
 */
static void fork_note_threads(void)
{
	static uint64_t many[FORK_WRITTEN_MAX];
	uint64_t few[FORK_WRITTEN_FEW], *tops = few; /* on the stack: no page of the shim's written at each fork */
	unsigned n = 0;
	for (uint64_t i = 0; i < pfs_regions_count() && n < FORK_WRITTEN_MAX; i++) {
		struct region *r = pfs_region_at(i);
		int stack_kind = r->kind == PFS_KIND_THREAD_STACK || r->kind == PFS_KIND_UNHOOKED || r->kind == PFS_KIND_SELF;
		if (!stack_kind || r->owner || !r->npages || !pfs_bits_get(&r->bits, r->npages - 1))
			continue;
		if (n == FORK_WRITTEN_FEW && tops == few) { /* many threads: the static table */
			memcpy(many, few, sizeof(few));
			tops = many;
		}
		tops[n++] = pfs_region_end(r);
	}
	pfs_forkwrites_prepare(tops, n);
}

/*
 * Before a fork: memory no hook saw is looked for now, so that parent and
 * child start from the same regions.  Found after the fork (the parent's
 * pass below), it was the parent's alone: the child met it later as new
 * memory, its pages present, their copies not counted (the shim's own site
 * table, grown just before a fork pool started: 32 copies in each worker).
 */
static void fast_lock(void)
{
	struct pfs_thread *t = pfs_tls_thread;
	pfs_regions_lock();
	if (enabled && t) {
		FEED(t);
		pfs_regions_pass(t, pfs_now_ns(), found_unknown, pass_skip);
		fork_note_threads();
	}
}

/*
 * The parent right after the fork.  With fault events, the pages held at
 * the fork (the pass before it found them: fast_lock) are noted now, before
 * the lock is released and anything drains the events: those since the
 * fork are the writes made between it and the parent's handler (libc's,
 * and the handlers that ran first: jemalloc unlocks its arenas, 36 pages
 * in Redis's server), copies.  (The scanner thread, waiting for the lock,
 * drained them first, and they were none.)
 */
static void fast_unlock(void)
{
	pfs_forkwrites_forget();
	if (enabled && feed)
		arm_all();
	pfs_regions_unlock();
}

const struct pfs_tracker pfs_tracker_fast = {
	.name = "fast",
	.init = fast_init,
	.start = fast_start,
	.add = fast_add,
	.adopted = fast_adopted,
	.seen = fast_seen,
	.free_at = fast_free_at,
	.unmap = fast_unmap,
	.remap = fast_remap,
	.sync = fast_sync,
	.advising = fast_advising,
	.advised = fast_advised,
	.release = pfs_nop_range, /* no registration but after a fork, for copy-on-write: not released (yet) */
	.tick = fast_tick,
	.thread_coming = pfs_nop_thread,
	.heap_carved = fast_heap_carved,
	.extent = fast_extent,
	.heap_prefaulted = fast_heap_prefaulted,
	.heap_released = fast_heap_released,
	.lock = fast_lock,
	.unlock = fast_unlock,
	.fork_parent = fast_fork_parent,
	.fork_child = fast_fork_child,
	.end = fast_end,
	.counts = fast_counts,
};
