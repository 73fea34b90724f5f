/* Exact mode's userfaultfd: opening it, and registering ranges with it (see uffd.c). */
#ifndef PFS_UFFD_H
#define PFS_UFFD_H

#include <stdint.h>

/* Write-protect faults are delivered (copy-on-write after fork is seen). */
extern int pfs_uffd_can_wp;

/*
 * Opens a full userfaultfd (the system call, else /dev/userfaultfd): its
 * number (the caller's until the handlers take it), or -errno with *why
 * naming what is missing.
 */
int pfs_uffd_open(const char **why);
/* Registers [start, start + len) for missing pages (and write-protect where it can): 0 or -errno; *wp says which. */
int pfs_uffd_register(uint64_t start, uint64_t len, int *wp);

#endif
