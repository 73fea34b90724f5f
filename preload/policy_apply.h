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
 * A rule that would populate or lock a mapping made without access
 * (PROT_NONE: a runtime's reserved heap, opened later by mprotect) cannot
 * at mmap: those actions wait, for that mapping, until the program opens a
 * part of it, and act on that part then (another POLICY record, its
 * prefaulted pages).  pfs_policy_opened: the program's mprotect of [addr,
 * addr + len) to `prot` succeeded; pfs_policy_forget: the range is
 * unmapped or mapped anew.  Both cheap when nothing waits.
 */
extern int pfs_policy_waiting;
/* A forked child: the waiting table's lock, held by a thread the fork left behind, is free (the table goes on: the child has the same reservations). */
void pfs_policy_child(void);
void pfs_policy_opened_slow(struct pfs_thread *t, uint64_t addr, uint64_t len, int prot);
void pfs_policy_forget_slow(uint64_t addr, uint64_t len);
static inline void pfs_policy_opened(struct pfs_thread *t, uint64_t addr, uint64_t len, int prot)
{
	if (__builtin_expect(__atomic_load_n(&pfs_policy_waiting, __ATOMIC_RELAXED), 0))
		pfs_policy_opened_slow(t, addr, len, prot);
}
static inline void pfs_policy_forget(uint64_t addr, uint64_t len)
{
	if (__builtin_expect(__atomic_load_n(&pfs_policy_waiting, __ATOMIC_RELAXED), 0))
		pfs_policy_forget_slow(addr, len);
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
