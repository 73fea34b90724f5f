/*
 * Call sites: stacks captured with libunwind, deduplicated into ids (one
 * STACK record each), and the per-thread cache that keeps small
 * allocations cheap (see sites.c).
 */
#ifndef PFS_SITES_H
#define PFS_SITES_H

#include <signal.h>
#include <stdint.h>

#include "python.h"
#include "thread.h"

/* Every this many hits a cached site is unwound again, to catch keys that two stacks share. */
#define PFS_VERIFY_EVERY 4096u
/* Slots per COUNTERS record. */
#define PFS_COUNTER_SLOTS 64u

int pfs_unwind_capture(uint64_t *frames, unsigned max, int *truncated);
/* Set while this thread unwinds with its signals blocked: sigprocmask is answered by pfs_unwind_sigprocmask. */
extern __thread int pfs_unwind_masked __attribute__((tls_model("initial-exec")));
int pfs_unwind_sigprocmask(int how, const sigset_t *set, sigset_t *old);
/* The program installed a signal handler (hook_signal.c): unwinds block the signals from now on. */
void pfs_unwind_note_handler(void);
uint32_t pfs_stacks_intern(struct pfs_thread *t, const uint64_t *frames, uint32_t n, uint16_t flags);
uint32_t pfs_stacks_count(void);
/* The frames of stack `id` (valid for the process's life): their number, or -1 if unknown. */
int pfs_stacks_frames(uint32_t id, const uint64_t **frames);
/* The stack that charges allocations whose stack could not be taken; interned at start. */
uint32_t pfs_stacks_unknown(struct pfs_thread *t);
/* Small allocations counted in this process so far (the summary). */
void pfs_counters_total(uint64_t *count, uint64_t *bytes);

/*
 * fork: prepare waits until no thread is inside libunwind and takes the
 * locks; in the child every thread's cache and counters start afresh, and
 * the inherited stacks are written again into the child's log, each when a
 * record of the child's first names it (pfs_stack_used).
 */
void pfs_sites_fork_prepare(void);
void pfs_sites_fork_parent(void);
void pfs_sites_fork_child(void);
void pfs_sites_rewrite(struct pfs_thread *t);
/*
 * A record about to be written names stack `id`: in a forked child, an
 * inherited stack is written into its log first, once.  Every writer of a
 * record with a stack calls it (a bash child's log named 19 of its 147
 * inherited stacks; writing them all was a tenth of its fork).
 */
extern uint32_t pfs_stacks_lazy_below;
void pfs_stack_used_slow(struct pfs_thread *t, uint32_t id);
static inline void pfs_stack_used(struct pfs_thread *t, uint32_t id)
{
	if (PFS_UNLIKELY(id < pfs_stacks_lazy_below))
		pfs_stack_used_slow(t, id);
}
/* The fork's gate alone: closed, no unwind starts (allocations are charged to the unknown stack). */
void pfs_unwind_gate_close(void);
void pfs_unwind_gate_open(void);

uint32_t pfs_site_lookup_slow(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp);
/* The stack of a call site, always unwound (the table's entry updated). */
uint32_t pfs_site_unwind(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp);
/* The stack with the thread's Python frames (python.h), or 0 when it runs no Python code now. */
uint32_t pfs_site_python(struct pfs_thread *t);
void pfs_site_count_slow(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp, uint64_t size);

/* The key's first place in the thread's table (the next ones follow it). */
static inline uint64_t pfs_cache_home(const struct pfs_thread *t, uintptr_t ret, uintptr_t sp, int kind)
{
	uint64_t h = (ret ^ (sp >> 4) ^ ((uintptr_t)kind << 7)) * 0x9E3779B97F4A7C15ull;
	return h >> t->cache_shift;
}

/*
 * The key's entry when it is among the first PFS_CACHE_PROBES from its
 * place (nearly always), else NULL: the slow path looks further.
 */
#define PFS_CACHE_PROBES 4u
static inline struct pfs_cache_ent *pfs_cache_probe(struct pfs_thread *t, uintptr_t ret, uintptr_t sp, int kind)
{
	uint64_t mask = ((uint64_t)1 << (64 - t->cache_shift)) - 1, i = pfs_cache_home(t, ret, sp, kind);
	for (unsigned k = 0; k < PFS_CACHE_PROBES; k++, i = (i + 1) & mask) {
		struct pfs_cache_ent *e = &t->cache[i];
		if (e->ret == ret && e->sp == sp && e->kind == kind)
			return e;
		if (!e->ret)
			return NULL;
	}
	return NULL;
}

/*
 * Keys that two stacks share (sites.c): the key's entry has a depth, and
 * a call with it is charged by its entry under a qualified key, (ret,
 * qualifier, kind | PFS_QUALIFIED).  The qualifier hashes sp and the
 * first k return addresses from the call's own (f[0] = ret).
 */
#define PFS_QUALIFIED 0x80
#define PFS_RA_UNKNOWN 1u
static inline uint64_t pfs_qualify_hash(uintptr_t sp, void *const *f, int k)
{
	uint64_t h = (uint64_t)sp * 0x9E3779B97F4A7C15ull;
	for (int i = 0; i < k; i++) {
		h = (h ^ (uint64_t)(uintptr_t)f[i]) * 0xFF51AFD7ED558CCDull;
		h ^= h >> 32;
	}
	return (h ^ (uint64_t)k) | 1;
}

/* A key of depth 1 whose caller's return address is at sp + e->ra_off: its qualifier, read, not unwound. */
static inline uint64_t pfs_qualify_caller(const struct pfs_cache_ent *e, uintptr_t ret, uintptr_t sp)
{
	void *f[2] = {(void *)ret, *(void *const *)(sp + e->ra_off)};
	return pfs_qualify_hash(sp, f, 2);
}

/*
 * The entry that answers for a call without unwinding, when the inline
 * path can tell it (a key, or a qualified key of depth 1 read from the
 * stack), else NULL; the caller still checks its depth and count.
 */
static inline struct pfs_cache_ent *pfs_cache_entry(struct pfs_thread *t, uintptr_t ret, uintptr_t sp, int kind)
{
	struct pfs_cache_ent *e = pfs_cache_probe(t, ret, sp, kind);
	if (e && PFS_UNLIKELY(e->depth) && e->depth == 1 && e->ra_off > PFS_RA_UNKNOWN)
		e = pfs_cache_probe(t, ret, pfs_qualify_caller(e, ret, sp), kind | PFS_QUALIFIED);
	return e;
}

/*
 * Asks the CPU for the key's first entry ahead of its use: a hook does so
 * before the real allocator's call, which then hides the cache miss (the
 * table outgrows the caches in a program of thousands of sites: cc1's
 * entry loads were half of pfs_track_alloc's samples).
 */
static inline void pfs_site_prefetch(int kind, uintptr_t ret, uintptr_t sp)
{
	struct pfs_thread *t = pfs_tls_thread;
	if (PFS_LIKELY(t != NULL))
		__builtin_prefetch(&t->cache[pfs_cache_home(t, ret, sp, kind)]);
}

/* The stack id of a call site, from the table when it can (inline when pfs_cache_entry finds it). */
static inline uint32_t pfs_site_lookup(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp)
{
	struct pfs_cache_ent *e = pfs_cache_entry(t, ret, sp, kind);
	if (PFS_LIKELY(e && !e->depth && --e->verify != 0))
		return e->stack;
	return pfs_site_lookup_slow(t, kind, ret, sp);
}

/*
 * The stack id for an allocation that gets a record of its own (large
 * blocks, mappings): always unwound, since two call paths can share a
 * cache key (a wrapper called from two callers at the same stack depth)
 * and a record's site is what policies match and reports name; in a forked
 * child, a sibling's frames for the same whole chain serve (forkshare.c).
 * A few microseconds, paid by allocations that cost far more themselves.  In a
 * Python program the stack carries the thread's Python frames too; small
 * blocks' cached sites do not (their key cannot tell two Python lines
 * apart: one line seen at a miss would be a guess for the hits after it).
 */
static inline uint32_t pfs_site_lookup_record(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp)
{
	uint32_t stack = PFS_UNLIKELY(pfs_python_on) ? pfs_site_python(t) : 0;
	return stack ? stack : pfs_site_unwind(t, kind, ret, sp);
}

/* Counts one small allocation at its call site. */
static inline void pfs_site_count(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp, uint64_t size)
{
	struct pfs_cache_ent *e = pfs_cache_entry(t, ret, sp, kind);
	if (PFS_LIKELY(e && !e->depth && e->slot && --e->verify != 0)) {
		e->slot->count++;
		e->slot->bytes += size;
		return;
	}
	pfs_site_count_slow(t, kind, ret, sp, size);
}

#endif
