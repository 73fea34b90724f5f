/*
 * What the shim knows of the allocator's layout, in one place.  glibc keeps
 * the chunk size in the word before the block (low bits are flags); reading
 * it tells a large block from a small one on free without a table lookup.
 * Other allocators (preloaded after the shim) are asked through
 * malloc_usable_size instead.
 */
#ifndef PFS_ALLOC_GLIBC_H
#define PFS_ALLOC_GLIBC_H

#include <stddef.h>
#include <stdint.h>

#include "real.h"
#include "util.h"

extern int pfs_alloc_is_glibc;
/*
 * In a forked child, another allocator is still locked (its prepare handler
 * took its locks, its child handler has not run) while the shim sets itself
 * up (hook_process.c): the shim's own blocks come from the bootstrap pool.
 */
extern int pfs_fork_window;
void pfs_alloc_detect(void);
/* The mapping the kernel names [heap] starts at `start` (the walk at start): the brk heap's first byte. */
void pfs_alloc_heap_mapping(uint64_t start);

/*
 * glibc's heaps: the brk heap (key PFS_HEAP_MAIN) and the thread arenas'
 * heaps, aligned to HEAP_MAX_SIZE (64 MiB on 64-bit; the key is the base).
 * The heap that holds block p (a glibc chunk), 0 when it lies in none the
 * shim knows; *brk_now is the program break.
 */
#define PFS_HEAP_MAIN 1ull
#define PFS_HEAP_MAX (64ull << 20)
uint64_t pfs_heap_key(uint64_t p, uint64_t *brk_now);
/*
 * Where the brk heap's used part ends now: the start of malloc's top chunk
 * (the break less mallinfo2's keepcost), its header's words included; the
 * break when that cannot be told.  Memory above it is untouched.
 */
uint64_t pfs_heap_used_end(uint64_t brk_now);
/* The end of heap `key` now: the program break, or a thread heap's size (its heap_info); 0 unknown. */
uint64_t pfs_heap_top(uint64_t key, uint64_t brk_now);
/* The program break now (the main heap's end). */
uint64_t pfs_heap_brk(void);

static inline size_t pfs_alloc_usable(void *p)
{
	if (PFS_LIKELY(pfs_alloc_is_glibc)) {
		size_t sz = ((size_t *)p)[-1];
		/* IS_MMAPPED (bit 1) chunks carry two words of overhead, heap chunks one. */
		return (sz & ~(size_t)7) - ((sz & 2) ? 2 * sizeof(size_t) : sizeof(size_t));
	}
	return real_malloc_usable_size ? real_malloc_usable_size(p) : 0;
}

/*
 * A block with a mapping of its own (glibc's IS_MMAPPED chunks).  With
 * another allocator (jemalloc preloaded or linked by the program) blocks
 * live inside the allocator's own mappings, which the mmap hook already
 * tracks when it maps them through libc: no block is a region of its own
 * then, or its pages would be counted twice.
 */
static inline int pfs_alloc_is_mmapped(void *p)
{
	return PFS_LIKELY(pfs_alloc_is_glibc) && (((size_t *)p)[-1] & 2) != 0;
}

/*
 * The end of what malloc wrote for a heap block of `usable` bytes at p: the
 * block, and the next chunk's size word, which malloc writes when it splits
 * the top chunk.
 */
static inline uint64_t pfs_alloc_block_end(const void *p, size_t usable)
{
	return (uint64_t)(uintptr_t)p + usable + 2 * sizeof(size_t);
}

/*
 * Freeing heap block p (glibc's, not IS_MMAPPED) merges its chunk with the
 * free chunks around it, the top chunk included; glibc trims a heap
 * (systrim, heap_trim) only from a free whose merged chunk is 64 KiB or
 * more (FASTBIN_CONSOLIDATION_THRESHOLD) and reaches the top.  The size of
 * the merged chunk should the next one be the top: p's chunk, the next
 * chunk, and the chunk before when it is free (PREV_INUSE clear); 0 for
 * an IS_MMAPPED chunk, which has no neighbours.
 */
#define PFS_ALLOC_TRIM_MIN (64u << 10)
static inline uint64_t pfs_alloc_free_reach(const void *p)
{
	const size_t *c = (const size_t *)p - 2; /* the chunk: prev_size, size */
	size_t sz = c[1] & ~(size_t)7;
	if (c[1] & 2)
		return 0;
	uint64_t reach = sz + (((const size_t *)((const char *)c + sz))[1] & ~(size_t)7);
	return c[1] & 1 ? reach : reach + c[0];
}

/* The size of heap block p's chunk (its size word, the flags masked). */
static inline size_t pfs_alloc_chunk_size(const void *p)
{
	return ((const size_t *)p)[-1] & ~(size_t)7;
}

/*
 * The chunks that always merge when freed: larger than every tcache bin
 * (1,032 usable bytes at most, whatever the tunables) and every fastbin.
 */
#define PFS_ALLOC_MERGE_MIN (1032 + 2 * sizeof(size_t))
static inline int pfs_alloc_always_merges(const void *p)
{
	return pfs_alloc_chunk_size(p) > PFS_ALLOC_MERGE_MIN;
}

/*
 * The main thread's tcache bins: glibc's tcache_perthread_struct (2.30 and
 * later: 64 16-bit counts, then 64 pointers; a chunk of 0x290 bytes), the
 * brk heap's first chunk, made by the program's first malloc; NULL while
 * not found (pfs_alloc_tcache_find looks, until the heap shows it is not
 * there).  Read only for the main thread's frees (heap.h): another thread
 * frees into a tcache of its own.
 */
extern const uint16_t *pfs_alloc_tcache;
const uint16_t *pfs_alloc_tcache_find(void);

/*
 * A chunk small enough for a tcache bin that goes to the merging path all
 * the same: it is larger than a fastbin's chunks (glibc's default, 128
 * bytes; pfs_alloc_past_fastbin) and its bin in the main thread's tcache is
 * full (glibc's default count, 7; pfs_alloc_bin_full).  Small blocks freed
 * in the order they were made merge into the top at the last free, which
 * trims the heap: its pages went unread (tests/preload/heap_trim_small.c
 * with 200).  For chunks that do not always merge (at most 1,048 bytes).
 */
#define PFS_ALLOC_FAST_MAX 128u
#define PFS_ALLOC_TCACHE_COUNT 7u
static inline int pfs_alloc_past_fastbin(const void *p)
{
	return pfs_alloc_chunk_size(p) > PFS_ALLOC_FAST_MAX;
}

static inline int pfs_alloc_bin_full(const void *p)
{
	const uint16_t *counts = pfs_alloc_tcache ? pfs_alloc_tcache : pfs_alloc_tcache_find();
	size_t bin = (pfs_alloc_chunk_size(p) - 17) / 16; /* glibc's csize2tidx */
	return counts && (bin >= 64 || counts[bin] >= PFS_ALLOC_TCACHE_COUNT);
}

/* Where the chunk after heap block p ends: the top's end when that chunk is the top. */
static inline uint64_t pfs_alloc_next_end(const void *p)
{
	const char *c = (const char *)p - 2 * sizeof(size_t);
	const char *next = c + (((const size_t *)c)[1] & ~(size_t)7);
	return (uint64_t)(uintptr_t)next + (((const size_t *)next)[1] & ~(size_t)7);
}

/* Where p's merged chunk starts: p's chunk, or the free chunk before it. */
static inline uint64_t pfs_alloc_merge_start(const void *p)
{
	const size_t *c = (const size_t *)p - 2;
	return (uint64_t)(uintptr_t)c - (c[1] & 1 ? 0 : c[0]);
}

#endif
