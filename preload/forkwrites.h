/*
 * What fork itself writes in the child before any fork handler runs, and
 * so before a tracker can watch the child's memory (forkwrites.c): the
 * kernel stores the child's thread id in the forking thread's descriptor,
 * glibc's fork marks every other thread's descriptor free (its thread id
 * 0), and the shim's own set-up of the child stores to its thread-local
 * state and errno.  Each is a write to a page present at the fork: a copy
 * the kernel counts in the child, made before the copies could be seen.
 */
#ifndef PFS_FORKWRITES_H
#define PFS_FORKWRITES_H

#include <stdint.h>

/* A thread the shim saw start (its stack not the program's): the top of its stack, measured once. */
void pfs_forkwrites_thread_started(uint64_t stack_top);

/*
 * In the parent, before the fork (its tracker's lock): the other threads'
 * descriptors, looked for below the tops of the thread stacks `tops`
 * (their top pages held: read without faulting them in).
 */
void pfs_forkwrites_prepare(const uint64_t *tops, unsigned n);

/*
 * In the child, before its tracker takes the regions' baseline: the start
 * of each page written since the fork, each once, into pages[]; returns
 * how many (at most max).  Each write is checked by what it left: a thread
 * id that was another at the fork.
 */
unsigned pfs_forkwrites_child(uint64_t *pages, unsigned max);
/* At most how many pages pfs_forkwrites_child will report now (in the child, before it). */
unsigned pfs_forkwrites_bound(void);
/* In the parent after the fork: what prepare noted is forgotten (a fork without handlers must not find it). */
void pfs_forkwrites_forget(void);

#endif
