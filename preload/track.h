/* What the hooks report to the core: allocations, frees, mappings. */
#ifndef PFS_TRACK_H
#define PFS_TRACK_H

#include <stdint.h>
#include <stddef.h>

struct pfs_thread;
struct pfs_heap_free;

/* A malloc block of at least this many usable bytes gets its own ALLOC record. */
#define PFS_BIG_BYTES 4096u

/* The ALLOC record of memory a forked child inherited (a tracker's pfs_announce_fn). */
void pfs_track_announce(struct pfs_thread *t, uint64_t *seq, int kind, uint32_t stack, uint64_t addr, uint64_t len);
/* Memory that is no allocation, accounted by kind (PFS_KIND_STACK ... PFS_KIND_SELF): logged and tracked. */
void pfs_track_category(struct pfs_thread *t, int kind, uint64_t addr, uint64_t len);
/*
 * Before a realloc of `old` to `size` bytes: the old block's last touches,
 * while its pages are still where they were; a shrink that may trim the
 * heap as a free does (pfs_track_free).
 */
void pfs_track_realloc_before(void *old, size_t old_usable, size_t size, struct pfs_heap_free *f);
void pfs_track_mremap_before(void *old, size_t old_len);
void pfs_track_madvise_before(void *p, size_t len, int advice);
/* Before and after a lock that populates [p, p + len) (mlock, mlock2 but on fault, mlockall(MCL_CURRENT)). */
void pfs_track_lock_before(const void *p, size_t len);
void pfs_track_lock(const void *p, size_t len);
/* All of the address space, for mlockall. */
#define PFS_ADDRESS_SPACE (1ull << 62)

/* A malloc-family block returned to the program. */
void pfs_track_alloc(int kind, void *p, size_t size, uintptr_t ret, uintptr_t sp);
/*
 * Before the block goes back to the allocator: a block with a record, or
 * one whose free may trim its heap (pfs_heap_may_trim).  f->key set: the
 * free may trim the heap, pfs_track_freed after the allocator's free.
 */
void pfs_track_free(void *p, int kind, struct pfs_heap_free *f);
void pfs_track_freed(const struct pfs_heap_free *f);
/* Around malloc_trim (heap.h): the heaps read before, their ends looked at and read again after. */
void pfs_track_trim(int after);
/* realloc moved or resized `old` (`old_mapped`: a block with a mapping of its own) into `p`. */
void pfs_track_realloc(void *old, size_t old_usable, int old_mapped, uint64_t free_seq, void *p, size_t size,
		       uintptr_t ret, uintptr_t sp);
void pfs_track_mmap(void *p, size_t len, int prot, int flags, int fd, uintptr_t ret, uintptr_t sp);
void pfs_track_munmap(void *p, size_t len);
/* A SysV shared memory segment attached at p (shmat); shmdt is an unmap. */
void pfs_track_shm(void *p, size_t len, uintptr_t ret, uintptr_t sp);
void pfs_track_shmdt(void *p);
void pfs_track_mremap(void *old, size_t old_len, void *p, size_t len, uintptr_t ret, uintptr_t sp);
void pfs_track_madvise(void *p, size_t len, int advice, int result);
void pfs_track_brk(void *old_end, size_t grow, uintptr_t ret, uintptr_t sp);

#endif
