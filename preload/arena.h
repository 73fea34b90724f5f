/* The shim's own memory: mmap-backed, never libc's malloc (whose hooks we are). */
#ifndef PFS_ARENA_H
#define PFS_ARENA_H

#include <stddef.h>
#include <stdint.h>

/* Zeroed, 16-byte aligned memory; NULL when the kernel refuses more. */
void *pfs_arena_alloc(size_t size);
/* Large blocks go back to the kernel; small ones stay (uthash frees only bucket arrays). */
void pfs_arena_free(void *p, size_t size);
/*
 * Memory that comes and goes (per-allocation tables): power-of-two size
 * classes from 32 bytes to 64 KiB with free lists, larger blocks mapped
 * directly.  Zeroed on every allocation; `size` must be given back on free.
 */
void *pfs_pool_alloc(size_t size);
void pfs_pool_free(void *p, size_t size);
/*
 * The same for state each process rebuilds right after every fork (the
 * copy-on-write bitmaps): MADV_WIPEONFORK memory, which a fork neither
 * shares nor write-protects, so the parent's next write there takes no
 * fault (13-14 us a page on our machines: bench/page_cost.c), and which the
 * child finds empty.  In the child every block taken before the fork is
 * gone (pfs_arena_child_reset): the holders drop their pointers unread.
 */
void *pfs_forkpool_alloc(size_t size);
void pfs_forkpool_free(void *p, size_t size);

/* Bytes the arena holds, for the summary and tests. */
size_t pfs_arena_bytes(void);
/* fork handling: the lock held across fork, then reset in the child. */
void pfs_arena_lock(void);
void pfs_arena_unlock(void);
void pfs_arena_child_reset(void);

/*
 * The shim's own mappings (the arena's, a handler's stack, a helper
 * thread's stack): noted so that their faults are told apart from the
 * program's ([pfshim]).  pfs_self_find: 1 and the range holding addr, else 0.
 */
void pfs_self_note(uint64_t addr, uint64_t len);
void pfs_self_forget(uint64_t addr);
int pfs_self_find(uint64_t addr, uint64_t *start, uint64_t *end);
/* The lowest start of the shim's own ranges above addr (UINT64_MAX: none). */
uint64_t pfs_self_next(uint64_t addr);

/* uthash allocates through the arena and survives an out-of-memory. */
#define uthash_malloc(sz) pfs_arena_alloc(sz)
#define uthash_free(ptr, sz) pfs_arena_free((ptr), (sz))
#define HASH_NONFATAL_OOM 1

#endif
