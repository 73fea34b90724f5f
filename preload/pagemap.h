/*
 * This process's page map (/proc/self/pagemap): which pages of a range are
 * present, swapped, written since write-protected, huge.  Read with
 * PAGEMAP_SCAN (Linux 6.7 and newer), or entry by entry where that is
 * missing or asked for (PFSHIM_PAGEMAP=read); the descriptor is kept by
 * fdkeep (a forked child reads its own).
 */
#ifndef PFS_PAGEMAP_H
#define PFS_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "kcompat.h"

/* Opens it: 0 or -errno.  `read_entries`: read 8-byte entries instead of PAGEMAP_SCAN. */
int pfs_pagemap_init(int read_entries);
/* A descriptor of this process's page map now (reopened in a forked child), or -1. */
int pfs_pagemap_fd(void);

/* A run [from, to) of pages (addresses) whose categories, of those asked for, are `cats`. */
typedef void (*pfs_pagemap_fn)(uint64_t from, uint64_t to, uint64_t cats, void *arg);
/*
 * Walks [start, end) for pages with any of the categories `anyof`, handing
 * fn each run in address order with its categories masked by `ret`.  `vec`
 * (n entries) is the caller's buffer for PAGEMAP_SCAN.  `fd`: from
 * pfs_pagemap_fd(), or -1 to get it here (a walk in pieces checks the
 * descriptor once, not once a piece: an fstat each).  0 or -errno.
 */
int pfs_pagemap_walk(int fd, uint64_t start, uint64_t end, uint64_t anyof, uint64_t ret, struct page_region *vec,
		     size_t n, pfs_pagemap_fn fn, void *arg);
/*
 * A walk of the whole address space ([0, PFS_USER_END)) is cheap: PAGEMAP_SCAN
 * is used, not the entries.  The kernel skips empty page tables at once and
 * reads the rest: about 5 ns a page.  (Asking it to leave file pages out,
 * the "file" category, does not skip a file's mapping: it looks up every
 * page's struct page instead, 25-45 ns a page, anonymous ones too.)
 */
int pfs_pagemap_space_walks(void);
/* The end of user space to walk (x86-64, 4-level page tables: 128 TiB). */
#define PFS_USER_END 0x7ffffffff000ull

/* Pages of [start, start + len) present now; -1 when it cannot be told. */
int64_t pfs_pagemap_present(uint64_t start, uint64_t len);

#endif
