/*
 * Heap pages, charged by carving (IDEAS.md): glibc's brk heap and its
 * thread arenas' heaps hold the blocks that have no mapping of their own.
 * Each heap keeps a mark, the highest byte handed out; a block that ends
 * past it carves the pages up to its end, and those pages belong to the
 * block's site from then on.  The rule lives here once; what a mode does
 * with carved pages is the tracker's (tracker.h).  Pages glibc trims and
 * hands out again keep their first owner (the mark never goes down).
 */
#ifndef PFS_HEAP_H
#define PFS_HEAP_H

#include <stdint.h>

struct pfs_thread;

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

/* A policy populated [start, end) of a new heap block [p, block_end) before it returned. */
/*
 * A large block of heap `key` was freed (pfs_track_free said it may trim
 * the heap): if glibc gave pages back, they are carved anew when reached.
 */
void pfs_heap_trimmed(struct pfs_thread *t, uint64_t key);
void pfs_heap_prefaulted(struct pfs_thread *t, uint64_t p, uint64_t block_end, uint32_t stack, int kind,
			 uint64_t start, uint64_t end);

/*
 * The brk heap's used part when the shim started ends at `used_end`: below
 * it, memory malloc handed out before the shim is pre-start memory; above
 * it (malloc's top chunk then) pages are carved by the blocks that reach
 * them, like any new heap memory.
 */
void pfs_heap_set_floor(uint64_t used_end);

/* fork: the heaps' lock, taken before the tracker's; reset in the child. */
void pfs_heap_lock(void);
void pfs_heap_unlock(void);
void pfs_heap_child(void);

#endif
