/*
 * Large blocks: the ALLOC / FREE / REMAP records of one process replayed in
 * seq order (file order is not time order across threads), matched by
 * address, to learn what each site still had live at the end.
 */
#ifndef PFSHIM_BLOCKS_H
#define PFSHIM_BLOCKS_H

#include "model.h"

/*
 * Sort p->evs by seq, replay them, and add each block still live at the end
 * to its site's live_blocks / bytes_live_at_end.  0 or -ENOMEM.
 */
int pfs_blocks_replay(struct pfs_proc *p);

#endif
