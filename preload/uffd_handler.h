/*
 * Exact mode's fault handlers: the processes that hold the userfaultfd and
 * resolve each fault (uffd_handler.c); their batches of events are fbatch.h's.
 */
#ifndef PFS_UFFD_HANDLER_H
#define PFS_UFFD_HANDLER_H

#include <stdint.h>

#include "pfshim/log_format.h"

struct pfs_thread;

/*
 * Starts the handlers, one per CPU the program may run on, for descriptor
 * `ufd`; the caller then closes its own copy (the handlers' are the only
 * ones).  0, or -errno with *why.
 */
int pfs_uffd_handlers_start(int ufd, const char **why);
/* A copy of the handlers' descriptor for one registration (close it at once); -1 when they are gone. */
int pfs_uffd_borrow(void);
/* Asks every handler to write its batch, and waits for them (at most 200 ms): exit, exec. */
void pfs_uffd_handlers_flush(void);
/*
 * Why the handlers stopped serving while the program runs (one was
 * killed, say; the others then end too), or NULL while they serve.
 */
const char *pfs_uffd_handlers_gone(void);
/* In a forked child: the parent's handlers are not ours; their sockets and pidfds are closed, counts reset. */
void pfs_uffd_handlers_forget(void);
/* First touches and copy-on-write faults the handlers counted in this process. */
void pfs_uffd_counts(uint64_t *first, uint64_t *cow);

#endif
