/*
 * The malloc family.  Each hook: pass through when the shim is busy on this
 * thread (recursion, the shim's own allocations) or not tracing; else call
 * the real function, then count or log the block.  The busy flag covers the
 * shim's own work only, not the real call: glibc's malloc never calls the
 * hooks (its mmap and brk are internal), and another allocator's mappings
 * (jemalloc maps through libc's mmap) are exactly what fast mode tracks.  A free is logged before
 * the real free, an allocation after the real allocation, so a reused
 * address never confuses the log.
 */
#include <stdint.h>
#include <string.h>

#include "alloc_glibc.h"
#include "heap.h"
#include "hook.h"
#include "sites.h"

/*
 * The real allocator's call: what another allocator maps meanwhile is its
 * own memory for the program's blocks (an extent, heap.h), even when the
 * shim asked.  glibc's malloc maps without the hooks: nothing to mark (the
 * two stores cost 9% of a malloc/free pair, measured).
 */
#define IN_ALLOC(call)                                                                     \
	({                                                                                 \
		__typeof__(call) in_alloc_r_;                                              \
		if (PFS_LIKELY(pfs_alloc_is_glibc)) {                                      \
			in_alloc_r_ = (call);                                              \
		} else {                                                                   \
			pfs_tls_in_alloc++;                                                \
			in_alloc_r_ = (call);                                              \
			pfs_tls_in_alloc--;                                                \
		}                                                                          \
		in_alloc_r_;                                                               \
	})

/* While dlsym itself allocates, blocks come from the bootstrap pool. */
#define PFS_BOOT_OR_ENSURE(name, size, align)                                              \
	do {                                                                               \
		if (PFS_UNLIKELY(!real_##name)) {                                          \
			if (pfs_real_resolving())                                          \
				return pfs_boot_alloc((size), (align));                    \
			pfs_real_resolve();                                                \
			if (!real_##name)                                                  \
				return pfs_boot_alloc((size), (align));                    \
		}                                                                          \
	} while (0)

PFS_EXPORT void *malloc(size_t size)
{
	PFS_BOOT_OR_ENSURE(malloc, size, 16);
	if (!pfs_hook_tracking_alloc(PFS_RET()))
		return PFS_UNLIKELY(pfs_fork_window) ? pfs_boot_alloc(size, 16) : IN_ALLOC(real_malloc(size));
	pfs_site_prefetch(PFS_KIND_MALLOC, PFS_RET(), PFS_SP());
	void *p = IN_ALLOC(real_malloc(size));
	if (PFS_LIKELY(p != NULL)) {
		pfs_tls_busy = 1;
		pfs_track_alloc(PFS_KIND_MALLOC, p, size, PFS_RET(), PFS_SP());
		pfs_hook_leave();
	}
	return p;
}

PFS_EXPORT void *calloc(size_t n, size_t size)
{
	if (PFS_UNLIKELY(!real_calloc)) {
		size_t total;
		if (__builtin_mul_overflow(n, size, &total))
			return NULL;
		PFS_BOOT_OR_ENSURE(calloc, total, 16);
	}
	if (!pfs_hook_tracking_alloc(PFS_RET()))
		return PFS_UNLIKELY(pfs_fork_window) ? pfs_boot_alloc(n * size, 16) : IN_ALLOC(real_calloc(n, size));
	pfs_site_prefetch(PFS_KIND_CALLOC, PFS_RET(), PFS_SP());
	void *p = IN_ALLOC(real_calloc(n, size));
	if (PFS_LIKELY(p != NULL)) {
		pfs_tls_busy = 1;
		pfs_track_alloc(PFS_KIND_CALLOC, p, n * size, PFS_RET(), PFS_SP());
		pfs_hook_leave();
	}
	return p;
}

PFS_EXPORT void free(void *p)
{
	if (!p)
		return;
	if (PFS_UNLIKELY(pfs_boot_owns(p)))
		return;
	PFS_ENSURE(free);
	/* Small blocks have no record to end and seldom reach the top: nothing to do (decided inline). */
	if (!pfs_hook_tracking()) {
		if (PFS_LIKELY(!pfs_fork_window))
			real_free(p);
		return;
	}
	if (PFS_LIKELY(pfs_alloc_usable(p) < PFS_BIG_BYTES && !pfs_heap_may_trim(p))) {
		real_free(p);
		return;
	}
	struct pfs_heap_free f;
	pfs_tls_busy = 1;
	pfs_track_free(p, PFS_KIND_MALLOC, &f);
	pfs_hook_leave();
	real_free(p);
	if (f.key) {
		pfs_tls_busy = 1;
		pfs_track_freed(&f);
		pfs_hook_leave();
	}
}

static void *realloc_common(void *old, size_t size, uintptr_t ret, uintptr_t sp)
{
	if (PFS_UNLIKELY(old && pfs_boot_owns(old))) {
		/* A bootstrap block grows into a real one. */
		void *p = malloc(size);
		if (p) {
			size_t n = pfs_boot_size(old);
			memcpy(p, old, n < size ? n : size);
		}
		return p;
	}
	if (PFS_UNLIKELY(!real_realloc)) {
		if (pfs_real_resolving() && !old)
			return pfs_boot_alloc(size, 16);
		pfs_real_resolve();
	}
	if (!pfs_hook_tracking() && PFS_UNLIKELY(pfs_fork_window)) {
		void *p = pfs_boot_alloc(size, 16); /* the old block is left where it is (hook_process.c) */
		size_t n = old ? pfs_alloc_usable(old) : 0;
		if (p && n)
			memcpy(p, old, n < size ? n : size);
		return p;
	}
	if (!pfs_hook_tracking_alloc(ret))
		return IN_ALLOC(real_realloc(old, size));
	pfs_tls_busy = 1;
	size_t old_usable = old ? pfs_alloc_usable(old) : 0;
	int old_mapped = old && pfs_alloc_is_mmapped(old);
	/* The free of the old block is ordered before anything that can reuse its address. */
	uint64_t free_seq = 0;
	struct pfs_heap_free f = {0};
	if (old_usable >= PFS_BIG_BYTES || (old && pfs_heap_shrink_may_trim(old, old_usable, size))) {
		free_seq = old_usable >= PFS_BIG_BYTES ? pfs_next_seq() : 0;
		pfs_track_realloc_before(old, old_usable, size, &f);
	}
	pfs_hook_leave();
	void *p = IN_ALLOC(real_realloc(old, size));
	if (p || (old && size == 0) || f.key) {
		pfs_tls_busy = 1;
		pfs_track_freed(&f);
		if (p || (old && size == 0))
			pfs_track_realloc(old, old_usable, old_mapped, free_seq, p, size, ret, sp);
		pfs_hook_leave();
	}
	return p;
}

PFS_EXPORT void *realloc(void *old, size_t size)
{
	return realloc_common(old, size, PFS_RET(), PFS_SP());
}

PFS_EXPORT void *reallocarray(void *old, size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc_common(old, total, PFS_RET(), PFS_SP());
}

static void *aligned_common(void *(*fn)(size_t, size_t), size_t align, size_t size, uintptr_t ret, uintptr_t sp)
{
	if (!fn) {
		errno = ENOMEM;
		return NULL;
	}
	if (!pfs_hook_tracking_alloc(ret))
		return IN_ALLOC(fn(align, size));
	void *p = IN_ALLOC(fn(align, size));
	if (p) {
		pfs_tls_busy = 1;
		pfs_track_alloc(PFS_KIND_ALIGNED, p, size, ret, sp);
		pfs_hook_leave();
	}
	return p;
}

PFS_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (PFS_UNLIKELY(!real_posix_memalign)) {
		if (pfs_real_resolving()) {
			*out = pfs_boot_alloc(size, align);
			return *out ? 0 : ENOMEM;
		}
		pfs_real_resolve();
		if (!real_posix_memalign)
			return ENOMEM;
	}
	if (!pfs_hook_tracking_alloc(PFS_RET()))
		return IN_ALLOC(real_posix_memalign(out, align, size));
	int r = IN_ALLOC(real_posix_memalign(out, align, size));
	if (r == 0) {
		pfs_tls_busy = 1;
		pfs_track_alloc(PFS_KIND_ALIGNED, *out, size, PFS_RET(), PFS_SP());
		pfs_hook_leave();
	}
	return r;
}

PFS_EXPORT void *aligned_alloc(size_t align, size_t size)
{
	PFS_BOOT_OR_ENSURE(aligned_alloc, size, align);
	return aligned_common(real_aligned_alloc, align, size, PFS_RET(), PFS_SP());
}

PFS_EXPORT void *memalign(size_t align, size_t size)
{
	PFS_BOOT_OR_ENSURE(memalign, size, align);
	return aligned_common(real_memalign, align, size, PFS_RET(), PFS_SP());
}

static void *valloc_shim(size_t align, size_t size)
{
	(void)align;
	return real_valloc(size);
}

static void *pvalloc_shim(size_t align, size_t size)
{
	(void)align;
	return real_pvalloc(size);
}

PFS_EXPORT void *valloc(size_t size)
{
	PFS_BOOT_OR_ENSURE(valloc, size, 4096);
	return aligned_common(valloc_shim, 0, size, PFS_RET(), PFS_SP());
}

PFS_EXPORT void *pvalloc(size_t size)
{
	PFS_BOOT_OR_ENSURE(pvalloc, (size + 4095) & ~(size_t)4095, 4096);
	return aligned_common(pvalloc_shim, 0, size, PFS_RET(), PFS_SP());
}

/*
 * malloc_trim gives pages back inside the allocator, where no hook sees them
 * (heap.h): the heaps are read before and after.  A program that grew its
 * heap, forked, wrote it and trimmed it had the copies of a round lost when
 * no read came between its writes and the trim (tests/preload/heap_trim_fork.c).
 */
PFS_EXPORT int malloc_trim(size_t pad)
{
	PFS_ENSURE(malloc_trim);
	if (!real_malloc_trim)
		return 0;
	if (!pfs_hook_tracking())
		return real_malloc_trim(pad);
	pfs_tls_busy = 1;
	pfs_track_trim(0);
	pfs_hook_leave();
	int r = real_malloc_trim(pad);
	pfs_tls_busy = 1;
	pfs_track_trim(1);
	pfs_hook_leave();
	return r;
}

PFS_EXPORT size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (pfs_boot_owns(p))
		return pfs_boot_size(p);
	PFS_ENSURE(malloc_usable_size);
	return real_malloc_usable_size ? real_malloc_usable_size(p) : 0;
}
