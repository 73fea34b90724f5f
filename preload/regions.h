/*
 * Fast mode (pfs_tracker_fast, tracker.h): the program's memory as
 * regions, each with a bitmap of the pages it holds (present or swapped),
 * compared with this process's page map (pagemap.h).  A page that is held
 * now and was not at the previous scan was touched for the first time
 * since the allocation returned (or since it was dropped): one first
 * touch, written as a TOUCH record charged to the allocation's site.  No
 * registration with the kernel, so transparent huge pages are untouched.
 * After a fork, what each region holds is write-protected asynchronously
 * (UFFD_FEATURE_WP_ASYNC) and the first write to each such page is a
 * copy-on-write fault.  Scans ride on the program's own calls while it is
 * single-threaded, else on a scanner thread (PFSHIM_SCAN_MS).
 */
#ifndef PFS_REGIONS_H
#define PFS_REGIONS_H

#include <stdint.h>

struct pfs_thread;

/* Scans every region now; returns the first touches found (the ops' periodic work, and tests). */
uint64_t pfs_regions_scan_all(struct pfs_thread *t, int reason);

/* Bitmap helpers, exposed for tests: set [from, to) and return how many were clear; clear [from, to). */
uint64_t pfs_bits_set_count(uint64_t *bits, uint64_t from, uint64_t to);
void pfs_bits_clear(uint64_t *bits, uint64_t from, uint64_t to);

#endif
