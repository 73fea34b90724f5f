/*
 * Fast mode's table of regions (pfs_tracker_fast, fast.c, is the tracker):
 * the program's memory as regions sorted by address, each with a bitmap of
 * the pages it held at the last scan, compared with this process's page map
 * (pagemap.h).  A page held now and not at the previous scan was touched
 * for the first time since the region began (or since it was dropped): a
 * first touch, written as a TOUCH record charged to the region's site, or
 * for a heap to the site that carved the page.  After a fork the pages held
 * then are write-protected asynchronously and the first write to each is a
 * copy-on-write fault.  No registration is needed for first touches, so
 * transparent huge pages are untouched, and a huge page mapped by one fault
 * counts as one fault.
 *
 * One pass reads the whole address space with one walk (one PAGEMAP_SCAN
 * while it holds fewer than 4,096 runs), and hands each run to the regions
 * it falls in; a run in no region is memory no hook saw being mapped, or
 * file pages the program reads, handed to `unknown`.  The same runs say
 * which pages were written since a fork's write-protect: the copies.  Every
 * function here is called with the table's lock held (pfs_regions_lock),
 * except the lock's own.
 */
#ifndef PFS_REGIONS_H
#define PFS_REGIONS_H

#include <stdint.h>

#include "bits.h"
#include "tracker.h" /* PFS_MEM_* */

struct pfs_thread;

struct owner {
	uint32_t stack;
	uint8_t kind;
	uint8_t pad[3];
};

/* What a fork does with a region's memory (madvise MADV_DONTFORK, MADV_WIPEONFORK). */
enum pfs_onfork {
	PFS_ONFORK_SHARE = 0,	/* the child gets it, both copy on write */
	PFS_ONFORK_NONE = 1,	/* the child has none of it; the parent's stays writable */
	PFS_ONFORK_WIPE = 2,	/* the child gets it empty; the parent's stays writable */
};

/*
 * What a fork shares of a region, rebuilt by both processes right after
 * every fork (fast.c cow_note_held): in the per-fork pool (arena.h), so
 * that neither the parent's writes here nor the child's copy it.  Zeros in
 * a forked child until then (pfs_region_cow makes it again in place): the
 * child's mappings are registered with no descriptor either.
 */
struct pfs_cow {
	struct pfs_bits bits; /* pages held at the last fork and not written since */
	uint64_t left;	      /* bits set: the written walk is skipped when none is left */
	uint64_t wp_gen;      /* registered (MODE_WP) with the write-protect descriptor of this generation */
	uint64_t reg_pages;   /* that far (pages from the start): a heap grows past it */
};

struct region {
	uint64_t start;
	uint64_t npages;
	uint64_t alloc_seq;
	uint64_t span_end;	/* heaps: their memory reaches this far (pages beyond npages are malloc's own) */
	uint32_t stack;
	uint8_t kind;
	uint8_t cowable;	/* private anonymous memory: a write after fork copies it */
	uint8_t huge;		/* the last scan found transparent huge pages in it */
	uint8_t onfork;		/* enum pfs_onfork: what a fork does with it (madvise DONTFORK, WIPEONFORK) */
	uint8_t extent;		/* another allocator's mapping carved per page (heap.h): owners, unmapped like any */
	uint8_t around;		/* PFS_MEM_READ_AROUND or PFS_MEM_EVENT_FAULTS: how a pass counts the faults of pages it finds */
	uint64_t cap;		/* pages the bitmaps (and owners) have room for: npages, more for heaps */
	struct pfs_bits bits;	/* pages held at the last scan */
	struct pfs_cow *cow;	/* NULL before a fork */
	struct owner *owner;	/* heaps only: the site that carved each page (heap.c) */
};

void pfs_regions_lock(void);
void pfs_regions_unlock(void);
void pfs_regions_child(void);

/* A new region of memory `mem` (PFS_MEM_*), inserted in address order (its bitmap empty); NULL when out of memory. */
struct region *pfs_region_new(uint64_t start, uint64_t npages, uint64_t alloc_seq, uint32_t stack, int kind,
			      unsigned mem);
/* A region's PFS_MEM_* bits, for a region made of it. */
static inline unsigned pfs_region_mem(const struct region *r)
{
	return (r->cowable ? PFS_MEM_COWABLE : 0) | r->around;
}
void pfs_region_free(struct region *r);
/* The regions in address order: how many, and the i-th. */
uint64_t pfs_regions_count(void);
struct region *pfs_region_at(uint64_t i);
/* The index of the first region that ends after addr (pfs_regions_count() when none). */
uint64_t pfs_regions_from(uint64_t addr);
/* The region that starts in the page of addr, or NULL. */
struct region *pfs_region_starting(uint64_t addr);
uint64_t pfs_region_end(const struct region *r);
/* The region holding addr (heaps only up to what was carved), or NULL. */
struct region *pfs_region_holding(uint64_t addr);
/* Room for `pages` pages in a region's tables (heaps grow); 0 or -ENOMEM. */
int pfs_region_grow(struct region *r, uint64_t pages);

/*
 * One region read now against its bitmap.  `t` NULL: a baseline, nothing
 * counted or logged.  Returns the faults counted (first touches and copies).
 */
uint64_t pfs_region_scan(struct region *r, struct pfs_thread *t, uint64_t now);

/*
 * Pages [from, to) of r, found held by a pass before r existed (memory no
 * hook saw): counted as first touches now, no page map read (a pass is
 * walking).  Returns the faults counted.
 */
uint64_t pfs_region_found(struct region *r, struct pfs_thread *t, uint64_t now, uint64_t from, uint64_t to);

/*
 * The pages r's bitmap holds (its baseline), counted as first touches now
 * (one a huge page), in one TOUCH record: memory the image touched before
 * the shim started.  Not a heap's (owners): another allocator's extent,
 * whose owners are still the mapping's own, is one. Returns the faults
 * counted.
 */
uint64_t pfs_region_held_touched(struct region *r, struct pfs_thread *t, uint64_t now);

/*
 * A pass over every region: one walk over the address space.  A run of
 * pages that no region holds goes to `unknown` (fast.c makes a region of
 * its mapping, or leaves it), which returns the faults it counted (NULL:
 * they are left alone).  `t` NULL: a baseline of every region, nothing
 * counted.  Returns the faults counted (first touches and copies).
 */
typedef uint64_t (*pfs_unknown_fn)(struct pfs_thread *t, uint64_t now, uint64_t from, uint64_t to);
/* The first range [*lo, *hi) at or after `from` that `unknown` would leave alone and no region holds: 1, else 0. */
typedef int (*pfs_skip_fn)(uint64_t from, uint64_t now, uint64_t *lo, uint64_t *hi);
/* skip (NULL: none): ranges the walk leaves out. */
uint64_t pfs_regions_pass(struct pfs_thread *t, uint64_t now, pfs_unknown_fn unknown, pfs_skip_fn skip);

/*
 * Page i of r was written after the fork before r was armed: a copy, counted
 * now (TOUCH), and no longer noted as shared.  1, or 0 when r was not armed
 * or the page was not held at the fork.
 */
uint64_t pfs_region_copied(struct region *r, struct pfs_thread *t, uint64_t now, uint64_t i);

/* The faults counted in this process so far (TOUCH records), and their reset in a child. */
void pfs_regions_counts(uint64_t *first, uint64_t *cow);

/* r->cow made (empty, r->cap pages) if it is not there; NULL when out of memory. */
struct pfs_cow *pfs_region_cow(struct region *r);
/* The pages r->cow holds (0 without one). */
uint64_t pfs_region_cow_left(const struct region *r);
void pfs_region_cow_free(struct region *r);
/*
 * Pages [from, to) (indices) no longer shared with a fork's other process:
 * their bits cleared from r->cow and its count lowered; how many were set.
 * Nothing is written when none was (the region is shared after a fork too).
 */
uint64_t pfs_region_cow_clear(struct region *r, uint64_t from, uint64_t to);

/*
 * Fault events feeding fast mode's regions (pevent.c; NULL: none): `drain`
 * runs with the regions lock held before every count (a pass, a free, an
 * unmap, a sync, a fork, the end), and marks the pages its events name in
 * the bitmaps, so that the page map's count finds only what the events did
 * not say.  A region's copy-on-write then comes from the events: a fork
 * notes the pages held (r->cow) and protects nothing.
 */
void pfs_fast_feed(void (*drain)(struct pfs_thread *t));

/* A fast-mode scan of everything now (fast.c); returns the first touches found: its periodic work, and tests. */
uint64_t pfs_regions_scan_all(struct pfs_thread *t, int reason);

#endif
