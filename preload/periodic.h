/*
 * A tracker's periodic work (fast mode's scans), run every `ms`
 * milliseconds.  A helper thread would make a single-threaded program
 * multi-threaded, and glibc changes behaviour then: malloc starts locking
 * its arenas (a program that allocates in a signal handler, harmless while
 * single-threaded, then deadlocks), unshare(CLONE_NEWUSER) refuses.  So
 * while the program is single-threaded (__libc_single_threaded), the work
 * rides on the program's own calls into the shim once the interval has
 * passed; a thread starts when the program has threads of its own.
 */
#ifndef PFS_PERIODIC_H
#define PFS_PERIODIC_H

struct pfs_thread;

/* The work and its interval (0: the default). */
void pfs_periodic_set(void (*work)(struct pfs_thread *t), unsigned ms);
/* From the program's calls into the shim: runs the work when it is due, or starts the thread. */
void pfs_periodic_tick(struct pfs_thread *t);
/* In a forked child: the thread did not survive the fork; the next tick starts one when needed. */
void pfs_periodic_child(void);

#endif
