/*
 * Exact mode's fault handlers: the processes that hold the userfaultfd and
 * resolve each fault, and the batches in which fault events become FAULTS
 * records (see uffd_handler.c).
 */
#ifndef PFS_UFFD_HANDLER_H
#define PFS_UFFD_HANDLER_H

#include <stdint.h>

#include "pfshim/log_format.h"

struct pfs_thread;

/*
 * A batch of fault events being encoded (log_format.h's codec).  Each
 * handler owns one; registration makes short ones.  No lock: nothing a
 * handler does may wait for a program thread, which may itself be waiting
 * for the handler.
 */
#define PFS_FBATCH_BYTES 4000u
struct pfs_fbatch {
	uint32_t len, count;
	uint64_t base_time;
	uint32_t base_tid;
	struct pfs_fev_cursor cur;
	uint64_t handler_ns;	/* the handler's CPU time for these faults (FAULTS.handler_ns) */
	uint8_t buf[PFS_FBATCH_BYTES + PFS_FEV_MAX_BYTES];
};
/* Adds one fault at `addr` (PFS_FEV_* flags; pc and sys with PFS_FEV_SITE) and counts it. */
void pfs_fbatch_add(struct pfs_fbatch *b, struct pfs_thread *t, uint64_t addr, uint32_t tid, unsigned flags,
		    uint64_t pc, long sys, uint64_t now);
/* Writes the batch as a FAULTS record through t's writer, and empties it. */
void pfs_fbatch_flush(struct pfs_fbatch *b, struct pfs_thread *t);

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
