/*
 * Per-thread state: the thread's log writer, its site cache, its heap
 * carving window.  Taken from a pool on a thread's first call into the
 * shim, given back when the thread ends; never freed (its log block and
 * counters stay valid).
 */
#ifndef PFS_THREAD_H
#define PFS_THREAD_H

#include <stdint.h>

#include "log.h"
#include "proc.h"

/*
 * Per-thread table of call sites: (return address, stack pointer, kind) ->
 * stack id, open addressing with linear probing (sites.c).  It starts with
 * the PFS_CACHE_SIZE entries inside the thread's state and doubles while at
 * most three quarters full, up to PFS_CACHE_MAX_BITS; past that a new key replaces an
 * entry.  128 entries (4 KiB): a short process's few dozen keys touch one
 * or two fresh pages, not the eight of a table of 1,024 (each a page fault
 * of 15-25 us on our machines, and a page copied in each forked child).
 */
#define PFS_CACHE_BITS 7u
#define PFS_CACHE_SIZE (1u << PFS_CACHE_BITS)
#define PFS_CACHE_MAX_BITS 17u

struct pfs_slotmap; /* per-thread (stack, kind) -> counter slot, uthash (sites.c) */

struct pfs_cache_ent {
	uintptr_t ret; /* 0: an empty entry */
	uintptr_t sp;
	uint32_t stack;
	uint8_t kind;
	uint8_t depth;	       /* 0, or this key was seen with two stacks: the frames that qualify it (sites.c) */
	uint16_t verify;       /* hits left before the next check */
	union {
		struct pfs_counter_slot *slot; /* depth 0: the counters the key's calls go to (NULL: none yet) */
		uintptr_t ra_off; /* depth 1 or more: where the next caller's return address is kept, from sp (sites.c) */
	};
};

struct pfs_thread {
	struct pfs_writer w;
	uint32_t tid;
	int in_use;
	struct pfs_counter_slot *free_slots; /* unused slots of the current COUNTERS record */
	uint32_t free_slots_left;
	struct pfs_slotmap *slots;
	uint64_t carve_lo, carve_hi; /* heap blocks inside [lo, hi) carve no new page (heap.c) */
	uint64_t stack_lo, stack_hi; /* a thread the shim saw start: its stack */
	struct pfs_thread *next_all;
	struct pfs_thread *next_free;
	struct pfs_cache_ent *cache; /* cache0 or a larger table */
	uint32_t cache_shift;        /* 64 - log2(entries) */
	uint32_t cache_used;
	uint32_t inherited_shift;
	const struct pfs_cache_ent *inherited; /* a forked child's: its parent's larger table, read only (sites.c) */
	struct pfs_cache_ent cache0[PFS_CACHE_SIZE];
};

extern __thread struct pfs_thread *pfs_tls_thread __attribute__((tls_model("initial-exec")));

struct pfs_thread *pfs_thread_get_slow(void);
/* The calling thread's state, made on first use; NULL when not tracing or out of memory. */
static inline struct pfs_thread *pfs_thread_get(void)
{
	struct pfs_thread *t = pfs_tls_thread;
	return PFS_LIKELY(t != NULL) ? t : pfs_thread_get_slow();
}

/*
 * The pthread key that gives a thread's state back at its end (after the
 * process's start); `at_exit` runs first, in the ending thread, while its
 * stack still holds what it touched (glibc drops the stack's pages after).
 */
void pfs_thread_key_init(void (*at_exit)(struct pfs_thread *t));
/* Every thread's state, live or pooled (for the fork child's reset and the summary). */
struct pfs_thread *pfs_thread_all(void);

/* fork: the pool's lock across fork; in the child, the other threads' states go back to the pool. */
void pfs_thread_lock(void);
void pfs_thread_unlock(void);
void pfs_thread_child(void);

#endif
