#ifndef PFS_FBATCH_H
#define PFS_FBATCH_H
/* Exact mode's fault events in batches, FAULTS records (fbatch.c). */
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
	uint64_t handler_ns;	/* the handler's CPU time and CPU wait for these faults (FAULTS.handler_ns) */
	uint16_t rec_flags;	/* the FAULTS records' h.flags (PFS_FAULTS_AGAIN) */
	uint8_t buf[PFS_FBATCH_BYTES + PFS_FEV_MAX_BYTES];
};
/* Adds one fault at `addr` (PFS_FEV_* flags; pc and sys with PFS_FEV_SITE) and counts it. */
void pfs_fbatch_add(struct pfs_fbatch *b, struct pfs_thread *t, uint64_t addr, uint32_t tid, unsigned flags,
		    uint64_t pc, long sys, uint64_t now);
/* Writes the batch as a FAULTS record through t's writer, and empties it. */
void pfs_fbatch_flush(struct pfs_fbatch *b, struct pfs_thread *t);

/* The faults batched since the start (or the last reset): first touches and copy-on-write faults. */
void pfs_fbatch_counts(uint64_t *first, uint64_t *cow);
void pfs_fbatch_reset_counts(void);

#endif
