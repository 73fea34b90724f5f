/* What the hooks report to the core: allocations, frees, mappings. */
#ifndef PFS_TRACK_H
#define PFS_TRACK_H

#include <stdint.h>
#include <stddef.h>

/* A malloc-family block returned to the program. */
void pfs_track_alloc(int kind, void *p, size_t size, uintptr_t ret, uintptr_t sp);
/* Before the block goes back to the allocator. */
void pfs_track_free(void *p, int kind);
/* realloc moved or resized `old` into `p`. */
void pfs_track_realloc(void *old, size_t old_usable, uint64_t free_seq, void *p, size_t size, uintptr_t ret,
		       uintptr_t sp);
void pfs_track_mmap(void *p, size_t len, int prot, int flags, int fd, uintptr_t ret, uintptr_t sp);
void pfs_track_munmap(void *p, size_t len);
void pfs_track_mremap(void *old, size_t old_len, void *p, size_t len, uintptr_t ret, uintptr_t sp);
void pfs_track_madvise(void *p, size_t len, int advice, int result);
void pfs_track_brk(void *old_end, size_t grow, uintptr_t ret, uintptr_t sp);

#endif
