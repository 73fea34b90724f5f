/*
 * Heap pages, charged by carving (IDEAS.md): glibc's brk heap and its
 * thread arenas' heaps hold the blocks that have no mapping of their own.
 * Each heap keeps a mark, the highest byte handed out; a block that ends
 * past it carves the pages up to its end, and those pages belong to the
 * block's site from then on.  The rule lives here once; what a mode does
 * with carved pages is the tracker's (tracker.h).
 */
#ifndef PFS_HEAP_H
#define PFS_HEAP_H

#include <stdint.h>
#include <sys/single_threaded.h>

#include "alloc_glibc.h"
#include "proc.h"
#include "thread.h"

struct pfs_heap {
	uint64_t key;	/* PFS_HEAP_MAIN, or the base of a thread arena's heap (alloc_glibc.h) */
	uint64_t start;	/* first page tracked */
	uint64_t hwm;	/* highest byte handed out (plus the next chunk's header) */
	uint64_t limit;	/* the carving window ends here at most (the tracker's say) */
	void *priv;	/* the tracker's own state of this heap */
};

/* Heaps are carved: the allocator is glibc's and a tracker is on (set at start). */
extern int pfs_heap_on;

/*
 * A heap block [p, end) returned outside the thread's window (t->carve_lo,
 * t->carve_hi): carves what it reaches past its heap's mark for its site,
 * and sets the thread's window to the heap's carved part.
 */
void pfs_heap_carve(struct pfs_thread *t, uint64_t p, uint64_t end, uint32_t stack, int kind);

/*
 * glibc trims a heap from inside free (the break lowered, a thread heap's
 * pages dropped), where no hook sees it, and the pages it gives back take
 * with them the touches made since the last scan.  So a free that may trim
 * has the heap read first, and after it a heap found shorter than its mark
 * gives the pages past its end back: touching them again is a first touch
 * of the block that carves them anew.
 *
 * A free may trim when its merged chunk reaches the top chunk and is larger
 * than every merged chunk seen to leave a heap whole (glibc's trim rule is
 * a threshold on that size, which only rises by itself: M_TRIM_THRESHOLD
 * follows the mmap threshold up).  pfs_heap_may_trim is the hook's inline
 * test (chunks that may go to a tcache bin instead are passed over unless
 * their bin is full: one of them next to the top is freed and reused again
 * and again in the common loop, where a read each time made 5 million
 * malloc/free pairs 20 times slower); pfs_heap_freeing makes sure (the next
 * chunk is the top) and reads the heap; pfs_heap_freed, after the allocator's free, looks at the heap's
 * end.  A realloc that shrinks its block frees the rest: `shrink` set, the
 * same steps, nothing learnt.
 */
extern uint64_t pfs_heap_no_trim;

/* The tcache alloc_glibc.h reads is the calling thread's: the main thread's (every thread's while there is no other). */
static inline int pfs_heap_tcache_mine(void)
{
	return __libc_single_threaded || (pfs_tls_thread && pfs_tls_thread->tid == (uint32_t)pfs_proc.pid);
}

static inline int pfs_heap_may_trim(const void *p)
{
	return pfs_heap_on &&
	       (pfs_alloc_always_merges(p) ||
		(pfs_alloc_past_fastbin(p) && pfs_heap_tcache_mine() && pfs_alloc_bin_full(p))) &&
	       pfs_alloc_free_reach(p) > pfs_heap_no_trim;
}

/* The same for a realloc of heap block p to `size` bytes: the tail it frees may merge. */
static inline int pfs_heap_shrink_may_trim(const void *p, size_t usable, size_t size)
{
	return pfs_heap_on && size < usable && usable - size > PFS_ALLOC_MERGE_MIN &&
	       pfs_alloc_free_reach(p) > pfs_heap_no_trim;
}

struct pfs_heap_free {
	uint64_t key;	/* the heap, 0 when the free cannot trim it */
	uint64_t top;	/* the heap's end before the free */
	uint64_t reach;	/* the size of the merged chunk */
	int learn;	/* a free: if the heap stays whole, merged chunks this large do not trim */
	int whole;	/* a thread heap all free from its start: glibc may unmap it */
};

/* Before the free of heap block p (no IS_MMAPPED chunk); f->key 0: it cannot trim its heap. */
void pfs_heap_freeing(struct pfs_thread *t, const void *p, int shrink, struct pfs_heap_free *f);
void pfs_heap_freed(struct pfs_thread *t, const struct pfs_heap_free *f);

/*
 * malloc_trim (hook_malloc.c) gives memory back inside the allocator: the
 * top of the brk heap past its pad (systrim), and in every arena the whole
 * pages of free chunks (MADV_DONTNEED).  pfs_heap_trimming reads every heap
 * before (pages written since the last read: first touches, copies after a
 * fork, counted before they go); pfs_heap_trimmed after looks at the brk
 * heap's end and reads the heaps again (the pages given back inside them
 * are no longer held: touched again, they are first touches).
 */
void pfs_heap_trimming(struct pfs_thread *t);
void pfs_heap_trimmed(struct pfs_thread *t);

/* A policy populated [start, end) of a new heap block [p, block_end) before it returned. */
void pfs_heap_prefaulted(struct pfs_thread *t, uint64_t p, uint64_t block_end, uint32_t stack, int kind,
			 uint64_t start, uint64_t end);

/*
 * The brk heap's used part when the shim started ends at `used_end`: below
 * it, memory malloc handed out before the shim is pre-start memory; above
 * it (malloc's top chunk then) pages are carved by the blocks that reach
 * them, like any new heap memory.
 */
void pfs_heap_set_floor(uint64_t used_end);

/*
 * Another allocator's extents (jemalloc, tcmalloc, mimalloc: the program's
 * malloc is not glibc's).  What such an allocator maps inside a malloc call
 * holds the program's blocks, a slab of one size here and a large block
 * there, not grown from one mark as glibc's heaps are: the region that its
 * mapping made would charge every fault of every block in it to the call
 * that happened to make the allocator map it.  So each page of an extent is
 * carved by the first block returned on it, for that block's site; pages no
 * block reaches (the allocator's own metadata) stay the mapping's.  Pages
 * the allocator drops (madvise) are carved again by the next block there.
 * The thread's window (t->carve_lo, t->carve_hi) is the run of carved
 * pages around its last block: blocks inside it cost two compares.
 */
extern __thread int pfs_tls_in_alloc __attribute__((tls_model("initial-exec"))); /* inside the real malloc */
extern int pfs_extents_on;	/* an extent exists: blocks outside the window are looked up */
extern int pfs_extents_pending; /* mapped while the shim itself allocated: to adopt (pfs_heap_extent_take) */

/* A private anonymous mapping [addr, addr + len) made inside the allocator, already added to the tracker. */
void pfs_heap_extent_mapped(uint64_t addr, uint64_t len);
/* The same, mapped while the shim was busy (its own malloc): adopted at the program's next call. */
void pfs_heap_extent_pend(uint64_t addr, uint64_t len);
/* One mapping to adopt: 1 and its range, or 0. */
int pfs_heap_extent_take(uint64_t *addr, uint64_t *len);
/* Block [p, end) outside the thread's window: carves its pages not carved yet, for its site. */
void pfs_heap_extent_carve(struct pfs_thread *t, uint64_t p, uint64_t end, int kind, uintptr_t ret, uintptr_t sp);
/* [addr, addr + len) of extents lost its pages (madvise): the next blocks there carve them anew. */
void pfs_heap_extent_dropped(struct pfs_thread *t, uint64_t addr, uint64_t len);
/*
 * [addr, addr + len) is about to be unmapped: the extents it meets are
 * forgotten; returns how many parts of them stay mapped, in keep (start,
 * end pairs), to be mapped again as extents once the tracker cut them.
 */
unsigned pfs_heap_extent_cut(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t keep[4]);

/* fork: the heaps' lock, taken before the tracker's; reset in the child. */
void pfs_heap_lock(void);
void pfs_heap_unlock(void);
void pfs_heap_child(void);

#endif
