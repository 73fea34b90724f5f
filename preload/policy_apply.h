/*
 * Policies applied (PFSHIM_POLICY): the first matching rule's actions on a
 * new allocation, before it returns to the program, logged as a POLICY
 * record.  The grammar and matching live in policy.c.
 */
#ifndef PFS_POLICY_APPLY_H
#define PFS_POLICY_APPLY_H

#include <stdint.h>

struct pfs_thread;

/*
 * Parses PFSHIM_POLICY (pfs_proc.cfg.policy) once at start; a bad rule is
 * one "pfshim: policy: ..." line (from the run's first process) and no
 * policy.  In every mode, off included.
 */
void pfs_policy_init(void);

/* True when a policy is in force: the hooks call pfs_policy_apply only then. */
extern int pfs_policy_on;

/*
 * A new allocation [addr, addr + size) of `kind` at call site `stack`,
 * whose ALLOC record is `alloc_seq`, with protection `prot` (mappings; the
 * malloc family is read-write): applies the first rule that matches, to the
 * whole pages inside it, and logs what happened.  Called before fast mode
 * takes the allocation's baseline, so populated pages are not first touches.
 * Keeps errno.
 */
void pfs_policy_apply_slow(struct pfs_thread *t, int kind, uint32_t stack, uint64_t addr, uint64_t size, int prot,
			   uint64_t alloc_seq);
static inline void pfs_policy_apply(struct pfs_thread *t, int kind, uint32_t stack, uint64_t addr, uint64_t size,
				    int prot, uint64_t alloc_seq)
{
	if (__builtin_expect(pfs_policy_on, 0))
		pfs_policy_apply_slow(t, kind, stack, addr, size, prot, alloc_seq);
}

/*
 * The actions of `actions` (PFS_ACT_*) on [start, start + len), page
 * aligned, of a kind of memory that `anon_writable` says may be touched:
 * result[k] per action bit k (0 or -errno), pages that became present in
 * *prefaulted.  Exposed for the unit tests.
 */
void pfs_policy_act(uint64_t start, uint64_t len, unsigned actions, int anon_writable, int16_t *result,
		    uint64_t *prefaulted);
/* The madvise the actions use; tests replace it to play an older kernel. */
extern int (*pfs_policy_madvise)(void *addr, size_t len, int advice);

#endif
