/*
 * Fast mode's first-touch tracking: the program's large allocations as
 * regions, each with a bitmap of the pages it holds (present or swapped),
 * compared with PAGEMAP_SCAN of /proc/self/pagemap.  A page that is held
 * now and was not at the previous scan was touched for the first time
 * since the allocation returned (or since it was dropped): one first touch,
 * written as a TOUCH record charged to the allocation's site.  No
 * registration with the kernel, so transparent huge pages are untouched.
 */
#ifndef PFS_REGIONS_H
#define PFS_REGIONS_H

#include <stdint.h>

struct pfs_thread;

/*
 * Opens /proc/self/pagemap; 0 or -errno.  `read_entries`: read the pagemap
 * entries instead of PAGEMAP_SCAN (kernels before 6.7, or PFSHIM_PAGEMAP=read).
 */
int pfs_regions_init(int read_entries);
int pfs_regions_enabled(void);

/*
 * A new allocation [addr, addr + len), page-rounded outwards: its pages held
 * now are its baseline, not first touches.  `cowable`: private anonymous
 * memory, whose writes after a fork are copy-on-write faults.  Older regions it overlaps (stale
 * ones whose end the shim did not see) are dropped.
 */
void pfs_regions_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack,
		     int kind, int cowable);
/* The allocation starting in the page of `addr` goes away: final scan, then forget it. */
void pfs_regions_free_at(struct pfs_thread *t, uint64_t addr);
/* [addr, addr + len) is unmapped: final scan of what it covers; what stays mapped stays tracked. */
void pfs_regions_unmap(struct pfs_thread *t, uint64_t addr, uint64_t len);
/* After a successful mremap: the region at `old` now lives at `new` (its pages moved with it). */
void pfs_regions_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len);
/* Scans the regions overlapping [addr, addr + len) now (around madvise, before mremap). */
void pfs_regions_scan_range(struct pfs_thread *t, uint64_t addr, uint64_t len, int reason);
/* Scans every region; returns the first touches found. */
uint64_t pfs_regions_scan_all(struct pfs_thread *t, int reason);
/* First touches and copy-on-write faults counted in this process so far. */
uint64_t pfs_regions_first_touches(void);
uint64_t pfs_regions_cow_faults(void);
/* After a fork, in the parent: count what was touched, then write-protect what the child shares. */
void pfs_regions_after_fork_parent(struct pfs_thread *t);

/* fork: the lock across fork; in the child, a fresh pagemap and a new baseline of every region. */
void pfs_regions_lock(void);
void pfs_regions_unlock(void);
void pfs_regions_child(struct pfs_thread *t);

/* Periodic scans every `ms` milliseconds (PFSHIM_SCAN_MS). */
void pfs_regions_set_interval(unsigned ms);
/* Called from the shim's hooks: scans when the interval has passed, or starts the scanner thread. */
void pfs_regions_tick(struct pfs_thread *t);

/*
 * Heap pages (blocks that have no mapping of their own): a block [p, end)
 * that reaches past its heap's mark carves the pages up to `end` for its
 * site.  Called when the block is outside the thread's window
 * (t->carve_lo/hi); pfs_carving says whether fast mode tracks heaps.
 */
extern int pfs_carving;
void pfs_heap_carve(struct pfs_thread *t, uint64_t p, uint64_t end, uint32_t stack, int kind);

/*
 * A policy populated [start, end) of a new heap block [p, block_end) before
 * it returned: the block carves its pages now, and those pages are held
 * from the start (fast mode's baseline), not first touches.
 */
void pfs_heap_prefaulted(struct pfs_thread *t, uint64_t p, uint64_t block_end, uint32_t stack, int kind,
			 uint64_t start, uint64_t end);

/* Bitmap helpers, exposed for tests: set [from, to) and return how many were clear; clear [from, to). */
uint64_t pfs_bits_set_count(uint64_t *bits, uint64_t from, uint64_t to);
void pfs_bits_clear(uint64_t *bits, uint64_t from, uint64_t to);

#endif
