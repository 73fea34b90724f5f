/*
 * Allocation tracking: what a hook saw becomes a counter increment (small
 * blocks) or a record (blocks of a page or more, every mapping), and is
 * handed to the tracker in force (tracker.h) and the heaps (heap.c).
 */
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>

#include "alloc_glibc.h"
#include "kcompat.h"
#include "heap.h"
#include "policy_apply.h"
#include "sites.h"
#include "track.h"
#include "tracker.h"

/* The ALLOC record of a block, under `seq` (0: a new one); its seq. */
static uint64_t write_alloc_as(struct pfs_thread *t, uint64_t seq, int kind, uint32_t stack, uint64_t addr,
			       uint64_t size, uint64_t length, int prot, int mflags, uint16_t flags)
{
	if (!(flags & (PFS_ALLOC_INHERITED | PFS_ALLOC_CATEGORY))) {
		__atomic_add_fetch(&pfs_proc.big_allocs, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&pfs_proc.big_bytes, size, __ATOMIC_RELAXED);
	}
	pfs_stack_used(t, stack);
	return pfs_rec_alloc_as(&t->w, seq ? seq : pfs_next_seq(), t->tid, kind, stack, addr, size, length, prot,
				mflags, flags);
}

static uint64_t write_alloc(struct pfs_thread *t, int kind, uint32_t stack, uint64_t addr, uint64_t size,
			    uint64_t length, int prot, int mflags, uint16_t flags)
{
	return write_alloc_as(t, 0, kind, stack, addr, size, length, prot, mflags, flags);
}

void pfs_track_announce(struct pfs_thread *t, uint64_t *seq, int kind, uint32_t stack, uint64_t addr, uint64_t len)
{
	uint64_t s = write_alloc_as(t, *seq, kind, stack, addr, len, len, 0, 0,
				    (uint16_t)(PFS_ALLOC_INHERITED |
					       (pfs_kind_is_category((unsigned)kind) ? PFS_ALLOC_CATEGORY : 0)));
	if (s != *seq) /* written only when new: the range's structure is on a page the parent shares */
		*seq = s;
}

/*
 * Memory that is no allocation (a stack, an object's .data, memory mapped
 * before the shim started, ...): logged as a range of its kind and tracked
 * like an allocation.  An object's writable segment gets a one-frame stack
 * (the segment's start) so that the report can name the object.
 */
void pfs_track_category(struct pfs_thread *t, int kind, uint64_t addr, uint64_t len)
{
	uint32_t stack = kind == PFS_KIND_DATA ? pfs_stacks_intern(t, &addr, 1, 0) : 0;
	uint64_t seq = write_alloc(t, kind, stack, addr, len, len, PROT_READ | PROT_WRITE, 0, PFS_ALLOC_CATEGORY);
	pfs_tracker->add(t, addr, len, seq, stack, kind, PFS_MEM_COWABLE);
	/* Another allocator's first extents, mapped before the shim: carved by the blocks it hands out later. */
	if (kind == PFS_KIND_PRESTART && !pfs_alloc_is_glibc)
		pfs_heap_extent_mapped(addr, len);
}

static void write_free(struct pfs_thread *t, uint64_t seq, void *p, uint64_t length, int kind)
{
	struct pfs_rec_free *r = pfs_rec_begin(&t->w, sizeof(*r));
	if (!r)
		return;
	r->seq = seq;
	r->time_ns = pfs_now_ns();
	r->addr = (uint64_t)(uintptr_t)p;
	r->length = length;
	r->tid = t->tid;
	r->kind = (uint8_t)kind;
	pfs_rec_end(r, PFS_REC_FREE, 0, sizeof(*r));
}

static void adopt_extents(struct pfs_thread *t);

/* Another allocator's block outside the thread's window: its extent's pages (heap.h). */
static __attribute__((noinline)) void extent_check(struct pfs_thread *t, uint64_t a, size_t usable, int kind,
						    uintptr_t ret, uintptr_t sp)
{
	if (PFS_UNLIKELY(__atomic_load_n(&pfs_extents_pending, __ATOMIC_RELAXED)))
		adopt_extents(t);
	if (__atomic_load_n(&pfs_extents_on, __ATOMIC_RELAXED))
		pfs_heap_extent_carve(t, a, a + usable, kind, ret, sp); /* no chunk header after the block */
}

/* A heap block ending past the thread's window may carve fresh heap pages, or an extent's (heap.c). */
static inline __attribute__((always_inline)) void carve_check(struct pfs_thread *t, void *p, size_t usable, int kind,
							      uintptr_t ret, uintptr_t sp)
{
	uint64_t a = (uint64_t)(uintptr_t)p, end = pfs_alloc_block_end(p, usable);
	if (PFS_LIKELY(a >= t->carve_lo && end <= t->carve_hi))
		return;
	if (pfs_heap_on)
		pfs_heap_carve(t, a, end, pfs_site_lookup(t, kind, ret, sp), kind);
	else if (!pfs_alloc_is_glibc)
		extent_check(t, a, usable, kind, ret, sp);
}

/* `mem`: PFS_MEM_* beyond COWABLE for a block with a mapping of its own. */
static void track_alloc(int kind, void *p, size_t size, uintptr_t ret, uintptr_t sp, unsigned mem)
{
	struct pfs_thread *t = pfs_thread_get();
	if (PFS_UNLIKELY(!t))
		return;
	size_t usable = pfs_alloc_usable(p);
	if (PFS_LIKELY(usable < PFS_BIG_BYTES)) {
		pfs_site_count(t, kind, ret, sp, size);
		carve_check(t, p, usable, kind, ret, sp);
		return;
	}
	uint32_t stack = pfs_site_lookup_record(t, kind, ret, sp);
	uint64_t seq = write_alloc(t, kind, stack, (uint64_t)(uintptr_t)p, size, usable, 0, 0, 0);
	pfs_policy_apply(t, kind, stack, (uint64_t)(uintptr_t)p, size, PROT_READ | PROT_WRITE, seq);
	/* Only chunks with mappings of their own are tracked alone; heap chunks share pages with their neighbours. */
	if (pfs_alloc_is_mmapped(p))
		pfs_tracker->add(t, (uint64_t)(uintptr_t)p, usable, seq, stack, kind, PFS_MEM_COWABLE | mem);
	else
		carve_check(t, p, usable, kind, ret, sp);
	pfs_tracker->tick(t); /* after: a scan must not meet the new mapping before it is tracked */
}

void pfs_track_alloc(int kind, void *p, size_t size, uintptr_t ret, uintptr_t sp)
{
	track_alloc(kind, p, size, ret, sp, 0);
}

/*
 * A free that may trim its heap (heap.h) has the heap read before, and its end looked at after.
 * Only a block with a mapping of its own is a region (track_alloc): a heap block's page may
 * begin another one, which must stay (the heap's part from before the shim started, whose
 * first page holds malloc's per-thread cache: dropped with bash's first freed stdio buffer,
 * its copies after every fork went uncounted).
 */
void pfs_track_free(void *p, int kind, struct pfs_heap_free *f)
{
	struct pfs_thread *t = pfs_thread_get();
	f->key = 0;
	if (!t)
		return;
	if (pfs_heap_may_trim(p))
		pfs_heap_freeing(t, p, 0, f);
	if (pfs_alloc_usable(p) < PFS_BIG_BYTES)
		return;
	pfs_tracker->tick(t);
	if (pfs_alloc_is_mmapped(p)) /* its region's last touches, before the pages go */
		pfs_tracker->free_at(t, (uint64_t)(uintptr_t)p);
	write_free(t, pfs_next_seq(), p, 0, kind);
}

void pfs_track_freed(const struct pfs_heap_free *f)
{
	struct pfs_thread *t = pfs_thread_get();
	if (t && f->key)
		pfs_heap_freed(t, f);
}

void pfs_track_trim(int after)
{
	struct pfs_thread *t = pfs_thread_get();
	if (!t || !pfs_heap_on)
		return;
	if (after)
		pfs_heap_trimmed(t);
	else
		pfs_heap_trimming(t);
}

void pfs_track_realloc_before(void *old, size_t old_usable, size_t size, struct pfs_heap_free *f)
{
	struct pfs_thread *t = pfs_thread_get();
	f->key = 0;
	if (!t)
		return;
	/* Shrinking frees the block's tail, which may trim the heap like a free. */
	if (pfs_heap_shrink_may_trim(old, old_usable, size))
		pfs_heap_freeing(t, old, 1, f);
	if (old_usable >= PFS_BIG_BYTES && pfs_alloc_is_mmapped(old))
		pfs_tracker->free_at(t, (uint64_t)(uintptr_t)old);
}

/*
 * A heap block moved by realloc into a mapping of its own was copied there
 * inside realloc: the new mapping's pages held when it is tracked are first
 * touches (2 MiB copied: 512 faults the kernel counts), not its baseline.
 * A mapped block is moved by mremap instead, its pages with it (counted
 * where they were).
 */
void pfs_track_realloc(void *old, size_t old_usable, int old_mapped, uint64_t free_seq, void *p, size_t size,
		       uintptr_t ret, uintptr_t sp)
{
	struct pfs_thread *t = pfs_thread_get();
	if (!t)
		return;
	if (old && old_usable >= PFS_BIG_BYTES)
		write_free(t, free_seq, old, 0, PFS_KIND_REALLOC);
	track_alloc(PFS_KIND_REALLOC, p, size, ret, sp, old && p && p != old && !old_mapped ? PFS_MEM_TOUCHED : 0);
}

/*
 * Shared memory is its own kind: shared anonymous memory, and shared
 * mappings of files that live in memory (POSIX shm under /dev/shm, memfd:
 * tmpfs); other shared file mappings are files.
 */
static int mmap_kind(int flags, int fd)
{
	int anon = (flags & MAP_ANONYMOUS) || fd < 0;
	if ((flags & MAP_TYPE) != MAP_SHARED && (flags & MAP_TYPE) != MAP_SHARED_VALIDATE)
		return anon ? PFS_KIND_MMAP : PFS_KIND_MMAP_FILE;
	struct statfs fs;
	if (anon || (fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC))
		return PFS_KIND_SHARED;
	return PFS_KIND_MMAP_FILE;
}

void pfs_track_shm(void *p, size_t len, uintptr_t ret, uintptr_t sp)
{
	struct pfs_thread *t = pfs_thread_get();
	if (!t)
		return;
	uint32_t stack = pfs_site_lookup_record(t, PFS_KIND_SHARED, ret, sp);
	uint64_t length = (len + pfs_proc.page_size - 1) & ~(uint64_t)(pfs_proc.page_size - 1);
	uint64_t seq = write_alloc(t, PFS_KIND_SHARED, stack, (uint64_t)(uintptr_t)p, len, length,
				   PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	pfs_tracker->add(t, (uint64_t)(uintptr_t)p, len, seq, stack, PFS_KIND_SHARED, 0);
	pfs_tracker->tick(t);
}

void pfs_track_shmdt(void *p)
{
	struct pfs_thread *t = pfs_thread_get();
	if (!t)
		return;
	pfs_tracker->free_at(t, (uint64_t)(uintptr_t)p);
	write_free(t, pfs_next_seq(), p, 0, PFS_KIND_SHARED);
}

void pfs_track_mmap(void *p, size_t len, int prot, int flags, int fd, uintptr_t ret, uintptr_t sp)
{
	struct pfs_thread *t = pfs_thread_get();
	if (!t)
		return;
	int kind = mmap_kind(flags, fd);
	uint32_t stack = pfs_site_lookup_record(t, kind, ret, sp);
	uint64_t length = (len + pfs_proc.page_size - 1) & ~(uint64_t)(pfs_proc.page_size - 1);
	uint64_t seq = write_alloc(t, kind, stack, (uint64_t)(uintptr_t)p, len, length, prot, flags, 0);
	pfs_policy_forget((uint64_t)(uintptr_t)p, len); /* a reservation mapped over */
	pfs_policy_apply(t, kind, stack, (uint64_t)(uintptr_t)p, len, prot, seq);
	/* MAP_TYPE, not single bits: MAP_SHARED_VALIDATE is MAP_SHARED | MAP_PRIVATE. */
	int cowable = kind == PFS_KIND_MMAP && (flags & MAP_TYPE) == MAP_PRIVATE;
	unsigned mem = cowable ? PFS_MEM_COWABLE : kind != PFS_KIND_MMAP && !(prot & PROT_WRITE) ? PFS_MEM_READ_AROUND : 0;
	pfs_tracker->add(t, (uint64_t)(uintptr_t)p, len, seq, stack, kind, mem);
	/* Mapped by another allocator inside a malloc: an extent, carved by the blocks it holds (heap.h). */
	if (cowable && pfs_tls_in_alloc && !pfs_alloc_is_glibc && (prot & PROT_WRITE))
		pfs_heap_extent_mapped((uint64_t)(uintptr_t)p, len);
	pfs_tracker->tick(t);
}

/*
 * Extents the allocator mapped while the shim itself allocated (heap.h): the
 * program's memory all the same, tracked from the program's next call, under
 * no call site of the program's.
 */
static void adopt_extents(struct pfs_thread *t)
{
	uint64_t addr, len;
	while (pfs_heap_extent_take(&addr, &len)) {
		uint32_t stack = pfs_stacks_unknown(t);
		uint64_t seq = write_alloc(t, PFS_KIND_MMAP, stack, addr, len, len, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, 0);
		pfs_tracker->add(t, addr, len, seq, stack, PFS_KIND_MMAP, PFS_MEM_COWABLE);
		pfs_heap_extent_mapped(addr, len);
	}
}

void pfs_track_munmap(void *p, size_t len)
{
	pfs_policy_forget((uint64_t)(uintptr_t)p, len);
	struct pfs_thread *t = pfs_thread_get();
	if (!t)
		return;
	pfs_tracker->tick(t);
	uint64_t keep[4];
	unsigned parts = pfs_heap_extent_cut(t, (uint64_t)(uintptr_t)p, len, keep);
	pfs_tracker->unmap(t, (uint64_t)(uintptr_t)p, len);
	for (unsigned i = 0; i < parts; i++)
		pfs_heap_extent_mapped(keep[2 * i], keep[2 * i + 1] - keep[2 * i]);
	write_free(t, pfs_next_seq(), p, len, PFS_KIND_MMAP);
}

void pfs_track_mremap_before(void *old, size_t old_len)
{
	pfs_policy_forget((uint64_t)(uintptr_t)old, old_len); /* moved or shrunk: no longer waiting there */
	struct pfs_thread *t = pfs_thread_get();
	if (t)
		pfs_tracker->sync(t, (uint64_t)(uintptr_t)old, old_len, PFS_SCAN_REMAP);
}

void pfs_track_mremap(void *old, size_t old_len, void *p, size_t len, uintptr_t ret, uintptr_t sp)
{
	struct pfs_thread *t = pfs_thread_get();
	if (!t)
		return;
	uint32_t stack = pfs_site_lookup_record(t, PFS_KIND_MMAP, ret, sp);
	pfs_stack_used(t, stack);
	struct pfs_rec_remap *r = pfs_rec_begin(&t->w, sizeof(*r));
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->time_ns = pfs_now_ns();
	r->old_addr = (uint64_t)(uintptr_t)old;
	r->old_length = old_len;
	r->new_addr = (uint64_t)(uintptr_t)p;
	r->new_length = len;
	r->tid = t->tid;
	r->stack = stack;
	pfs_rec_end(r, PFS_REC_REMAP, 0, sizeof(*r));
	pfs_tracker->remap(t, (uint64_t)(uintptr_t)old, old_len, (uint64_t)(uintptr_t)p, len);
}

/* mlock and the like populate the range as MADV_POPULATE_WRITE does: the tracker counts them the same way. */
void pfs_track_lock_before(const void *p, size_t len)
{
	struct pfs_thread *t = pfs_thread_get();
	if (t)
		pfs_tracker->advising(t, (uint64_t)(uintptr_t)p, len, MADV_POPULATE_WRITE);
}

void pfs_track_lock(const void *p, size_t len)
{
	struct pfs_thread *t = pfs_thread_get();
	if (t)
		pfs_tracker->advised(t, (uint64_t)(uintptr_t)p, len, MADV_POPULATE_WRITE);
}

void pfs_track_madvise_before(void *p, size_t len, int advice)
{
	struct pfs_thread *t = pfs_thread_get();
	if (t)
		pfs_tracker->advising(t, (uint64_t)(uintptr_t)p, len, advice);
}

void pfs_track_madvise(void *p, size_t len, int advice, int result)
{
	struct pfs_thread *t = pfs_thread_get();
	struct pfs_rec_madvise *r = t ? pfs_rec_begin(&t->w, sizeof(*r)) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->time_ns = pfs_now_ns();
	r->addr = (uint64_t)(uintptr_t)p;
	r->length = len;
	r->advice = advice;
	r->result = result;
	r->tid = t->tid;
	pfs_rec_end(r, PFS_REC_MADVISE, 0, sizeof(*r));
	if (result == 0)
		pfs_tracker->advised(t, (uint64_t)(uintptr_t)p, len, advice);
	if (result == 0 && (advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE))
		pfs_heap_extent_dropped(t, (uint64_t)(uintptr_t)p, len);
}

void pfs_track_brk(void *old_end, size_t grow, uintptr_t ret, uintptr_t sp)
{
	struct pfs_thread *t = pfs_thread_get();
	if (!t)
		return;
	uint32_t stack = pfs_site_lookup_record(t, PFS_KIND_BRK, ret, sp);
	uint64_t seq = write_alloc(t, PFS_KIND_BRK, stack, (uint64_t)(uintptr_t)old_end, grow, grow,
				   PROT_READ | PROT_WRITE, 0, 0);
	pfs_policy_apply(t, PFS_KIND_BRK, stack, (uint64_t)(uintptr_t)old_end, grow, PROT_READ | PROT_WRITE, seq);
	pfs_tracker->add(t, (uint64_t)(uintptr_t)old_end, grow, seq, stack, PFS_KIND_BRK, PFS_MEM_COWABLE);
}
