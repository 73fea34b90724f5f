/*
 * Call sites first seen in forked children, shared among the children of
 * one image (forkshare.c): a child finds there the frames a sibling
 * unwound for the same cache key, and skips the unwind.
 */
#ifndef PFS_FORKSHARE_H
#define PFS_FORKSHARE_H

#include <stdint.h>

/* Before a fork: the shared table made, once per image (nothing if it cannot be). */
void pfs_forkshare_prepare(void);
/*
 * In a forked child of the table's maker, its loaded objects unchanged:
 * the frames of key (ret, sp, kind) whose every return address this stack
 * holds where the sibling's held it, into frames[PFS_MAX_FRAMES], *n and
 * *flags set; 0 when none is shared (or this process may not use them).
 */
int pfs_forkshare_find(uint64_t ret, uint64_t sp, int kind, uint64_t *frames, uint32_t *n, uint16_t *flags);
/* Whether this process shares what it unwinds (a forked child of the table's maker, its objects unchanged). */
int pfs_forkshare_wanted(void);
/*
 * The frames a forked child unwound for a key it saw first, shared, with
 * where each frame past the first lies on the stack (off[i] from sp, for
 * i in 1..n-1: sites.c's callers_ra_offs).
 */
void pfs_forkshare_add(uint64_t ret, uint64_t sp, int kind, const uint32_t *off, const uint64_t *frames,
		       uint32_t n, uint16_t flags);

#endif
