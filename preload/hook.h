/* Shared by the hook files: export marker, caller identity, the busy guard. */
#ifndef PFS_HOOK_H
#define PFS_HOOK_H

#include <errno.h>

#include "core.h"
#include "proc.h"
#include "real.h"
#include "thread.h"
#include "track.h"

#define PFS_EXPORT __attribute__((visibility("default")))
/* The caller of the hook, and a stand-in for its stack pointer (see sites.c). */
#define PFS_RET() ((uintptr_t)__builtin_return_address(0))
#define PFS_SP() ((uintptr_t)__builtin_frame_address(0))

/* Resolve on first use: a hook may run before the shim's constructor. */
#define PFS_ENSURE(name)                                                                   \
	do {                                                                               \
		if (PFS_UNLIKELY(!real_##name))                                            \
			pfs_real_resolve();                                                \
	} while (0)

/*
 * The end of the shim's work in a hook: the program's again.  A fatal
 * signal that arrived meanwhile (core.c) ends the process here.
 */
static inline void pfs_hook_leave(void)
{
	pfs_tls_busy = 0;
	if (PFS_UNLIKELY(__atomic_load_n(&pfs_fatal_pending, __ATOMIC_RELAXED)))
		pfs_core_fatal_now();
}

/*
 * The shim traces this process; a child the hooks did not see being made
 * is set up first, at its first call from the program (a child the shim
 * made for its own work, busy, is not: inlines.c reads DWARF in one).
 */
static inline int pfs_hook_active(void)
{
	if (!pfs_active())
		return 0;
	return PFS_LIKELY(*pfs_core_here) || pfs_tls_busy || pfs_core_unseen_child();
}

/* True when this call should be tracked; the caller then sets pfs_tls_busy around its work. */
static inline int pfs_hook_tracking(void)
{
	return !pfs_tls_busy && pfs_hook_active();
}

/*
 * pfs_hook_tracking for the hooks that allocate, called from `ret`: the
 * program's first such call before the shim's constructor may start the
 * shim (core.c, pfs_core_start_early).  Only these: an mmap may come from
 * inside another allocator's start, under its lock (rustc's jemalloc maps
 * its first pages under its init lock, and the shim's start, asking the
 * loader for symbols, mallocs).
 */
static inline int pfs_hook_tracking_alloc(uintptr_t ret)
{
	if (PFS_LIKELY(pfs_hook_tracking()))
		return 1;
	return PFS_UNLIKELY(!__atomic_load_n(&pfs_core_start_tried, __ATOMIC_RELAXED)) && !pfs_tls_busy &&
	       pfs_core_start_early(ret);
}

#endif
