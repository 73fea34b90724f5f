/*
 * Exact mode's fault events in batches: each handler encodes its faults
 * (log_format.h's codec) and writes them as FAULTS records through its own
 * writer; the faults as the kernel took them are counted here.
 */
#include <string.h>

#include "fbatch.h"
#include "log.h"
#include "proc.h"
#include "thread.h"

static uint64_t first_touches, cow_faults; /* atomic */

void pfs_fbatch_flush(struct pfs_fbatch *b, struct pfs_thread *t)
{
	if (!b->count)
		return;
	uint32_t size = PFS_ALIGN8((uint32_t)sizeof(struct pfs_rec_faults) + b->len);
	struct pfs_rec_faults *r = t ? pfs_rec_begin(&t->w, size) : NULL;
	if (r) {
		r->time_ns = b->base_time;
		r->tid = b->base_tid;
		r->count = b->count;
		r->bytes = b->len;
		r->handler_ns = b->handler_ns < UINT32_MAX ? (uint32_t)b->handler_ns : UINT32_MAX;
		memcpy(r + 1, b->buf, b->len);
		pfs_rec_end(r, PFS_REC_FAULTS, b->rec_flags, size);
	}
	b->count = 0;
	b->len = 0;
	b->handler_ns = 0;
}

void pfs_fbatch_add(struct pfs_fbatch *b, struct pfs_thread *t, uint64_t addr, uint32_t tid, unsigned flags, uint64_t pc,
		   long sys, uint64_t now)
{
	if (b->len > PFS_FBATCH_BYTES)
		pfs_fbatch_flush(b, t);
	if (!b->count) {
		b->base_time = now;
		b->base_tid = tid;
		pfs_fev_start(&b->cur, now, tid);
	}
	const struct pfs_fev ev = {.page = addr / (pfs_proc.page_size ? pfs_proc.page_size : 4096), .time_ns = now, .pc = pc, .sys = sys, .tid = tid,
				   .flags = flags};
	b->len += pfs_fev_encode(b->buf + b->len, &b->cur, &ev);
	b->count++;
	__atomic_add_fetch(flags & PFS_FEV_COW ? &cow_faults : &first_touches, 1, __ATOMIC_RELAXED);
}

void pfs_fbatch_counts(uint64_t *first, uint64_t *cow)
{
	*first = __atomic_load_n(&first_touches, __ATOMIC_RELAXED);
	*cow = __atomic_load_n(&cow_faults, __ATOMIC_RELAXED);
}

void pfs_fbatch_reset_counts(void)
{
	first_touches = cow_faults = 0;
}
