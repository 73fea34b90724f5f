/* Heap pages charged by carving (heap.h). */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#include "alloc_glibc.h"
#include "arena.h"
#include "heap.h"
#include "proc.h"
#include "sites.h"
#include "thread.h"
#include "tracker.h"

#define HEAPS_MAX 64

int pfs_heap_on;
static pthread_mutex_t heap_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct pfs_heap heaps[HEAPS_MAX];
static unsigned nheaps;
static uint64_t main_floor;

void pfs_heap_set_floor(uint64_t used_end)
{
	main_floor = (used_end + pfs_proc.page_size - 1) & ~(uint64_t)(pfs_proc.page_size - 1);
}

/* The heap of `key`, made on first sight at the page of p; NULL when the table is full. */
static struct pfs_heap *heap_get(uint64_t key, uint64_t p)
{
	for (unsigned i = 0; i < nheaps; i++)
		if (heaps[i].key == key)
			return &heaps[i];
	if (nheaps == HEAPS_MAX)
		return NULL;
	struct pfs_heap *h = &heaps[nheaps++];
	h->key = key;
	h->start = h->hwm = p & ~(uint64_t)(pfs_proc.page_size - 1);
	if (key == PFS_HEAP_MAIN && h->start < main_floor)
		h->start = h->hwm = main_floor; /* what lies below is pre-start memory */
	h->limit = UINT64_MAX;
	h->priv = NULL;
	return h;
}

/*
 * Heap h ends at `top` now, below what was carved: it shrank (systrim's brk,
 * shrink_heap's MADV_DONTNEED, inside free where no hook sees them).  Its
 * pages past the end are gone, and a block there carves them again (a
 * program that grew and trimmed its heap ten times had one time counted).
 * heap_mutex held.
 */
static int shrunk(struct pfs_thread *t, struct pfs_heap *h, uint64_t top)
{
	uint64_t page = pfs_proc.page_size;
	if (!top || top >= h->hwm || top < h->start)
		return 0;
	pfs_tracker->heap_released(h, top, (h->hwm + page - 1) & ~(page - 1));
	h->hwm = top;
	if (t->carve_hi > top && t->carve_lo == (h->key == PFS_HEAP_MAIN ? 0 : h->key))
		t->carve_hi = top; /* this thread's window; another thread's keeps its old end until it carves */
	return 1;
}

/* Carves [p, end) in its heap; heap_mutex held.  Returns the heap, NULL when none. */
static struct pfs_heap *carve(struct pfs_thread *t, uint64_t p, uint64_t end, uint32_t stack, int kind)
{
	uint64_t brk_now, key = pfs_heap_key(p, &brk_now);
	if (!key)
		return NULL;
	struct pfs_heap *h = heap_get(key, p);
	if (!h)
		return NULL;
	if (end <= h->start) {
		/* Wholly below what is carved (the brk heap's pre-start memory): carves nothing. */
		t->carve_lo = key == PFS_HEAP_MAIN ? 0 : key;
		t->carve_hi = h->start;
		return NULL;
	}
	uint64_t page = pfs_proc.page_size, top = pfs_heap_top(key, brk_now);
	shrunk(t, h, top);
	uint64_t from = (h->hwm + page - 1) & ~(page - 1), to = (end + page - 1) & ~(page - 1);
	if (end > h->hwm)
		h->hwm = end;
	else
		from = to; /* nothing new: the tracker may still follow the heap's growth */
	pfs_tracker->heap_carved(t, h, from, to, top, stack, kind);
	/* This thread's window: blocks inside it carve nothing (two compares on the fast path). */
	t->carve_lo = key == PFS_HEAP_MAIN ? 0 : key;
	t->carve_hi = (h->hwm + page - 1) & ~(page - 1);
	if (t->carve_hi > h->limit)
		t->carve_hi = h->limit;
	return h;
}

void pfs_heap_carve(struct pfs_thread *t, uint64_t p, uint64_t end, uint32_t stack, int kind)
{
	int saved = errno;
	pthread_mutex_lock(&heap_mutex);
	carve(t, p, end, stack, kind);
	pthread_mutex_unlock(&heap_mutex);
	errno = saved;
}

uint64_t pfs_heap_no_trim = PFS_ALLOC_TRIM_MIN - 1;

void pfs_heap_freeing(struct pfs_thread *t, const void *p, int shrink, struct pfs_heap_free *f)
{
	f->key = 0;
	if (!pfs_heap_on || pfs_alloc_is_mmapped((void *)p))
		return;
	uint64_t brk_now, key = pfs_heap_key((uint64_t)(uintptr_t)p, &brk_now), top;
	/* A chunk whose next one is not the top merges with free chunks at most, never with the top. */
	if (!key || !(top = pfs_heap_top(key, brk_now)) || pfs_alloc_next_end(p) != top)
		return;
	int saved = errno;
	pthread_mutex_lock(&heap_mutex);
	for (unsigned i = 0; i < nheaps; i++)
		if (heaps[i].key == key) {
			/* Pages the trim may give back: from the merged chunk to the top's end. */
			uint64_t from = pfs_alloc_merge_start(p);
			if (from < heaps[i].hwm)
				pfs_tracker->sync(t, from, top - from, PFS_SCAN_FREE);
			f->key = key;
			f->top = top;
			f->whole = from - key < pfs_proc.page_size;
			break;
		}
	pthread_mutex_unlock(&heap_mutex);
	errno = saved;
	f->reach = pfs_alloc_free_reach(p);
	f->learn = !shrink;
}

void pfs_heap_freed(struct pfs_thread *t, const struct pfs_heap_free *f)
{
	int saved = errno;
	/* A thread heap whose every chunk became free may be unmapped whole (heap_trim): then it ends at its start. */
	unsigned char v;
	uint64_t top = f->key != PFS_HEAP_MAIN && f->whole &&
			       mincore((void *)(uintptr_t)f->key, pfs_proc.page_size, &v) && errno == ENOMEM
			   ? f->key
			   : pfs_heap_top(f->key, pfs_heap_brk());
	pthread_mutex_lock(&heap_mutex);
	for (unsigned i = 0; i < nheaps; i++)
		if (heaps[i].key == f->key) {
			shrunk(t, &heaps[i], top > heaps[i].start ? top : heaps[i].start);
			break;
		}
	/* The heap's end did not move (above the mark either): merged chunks this large do not trim. */
	if (top >= f->top && f->learn && f->reach > pfs_heap_no_trim)
		__atomic_store_n(&pfs_heap_no_trim, f->reach, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&heap_mutex);
	errno = saved;
}

/* Every heap's carved part read (heap_mutex held). */
static void read_heaps(struct pfs_thread *t)
{
	for (unsigned i = 0; i < nheaps; i++)
		if (heaps[i].hwm > heaps[i].start) /* a thread heap unmapped whole ends at its start */
			pfs_tracker->sync(t, heaps[i].start, heaps[i].hwm - heaps[i].start, PFS_SCAN_FREE);
}

void pfs_heap_trimming(struct pfs_thread *t)
{
	int saved = errno;
	pthread_mutex_lock(&heap_mutex);
	read_heaps(t);
	pthread_mutex_unlock(&heap_mutex);
	errno = saved;
}

void pfs_heap_trimmed(struct pfs_thread *t)
{
	int saved = errno;
	/* Only the brk heap's end moves (glibc's malloc_trim shrinks no thread heap; another allocator's, none of ours). */
	uint64_t top = pfs_alloc_is_glibc ? pfs_heap_top(PFS_HEAP_MAIN, pfs_heap_brk()) : 0;
	pthread_mutex_lock(&heap_mutex);
	for (unsigned i = 0; i < nheaps && top; i++)
		if (heaps[i].key == PFS_HEAP_MAIN)
			shrunk(t, &heaps[i], top > heaps[i].start ? top : heaps[i].start);
	read_heaps(t);
	pthread_mutex_unlock(&heap_mutex);
	errno = saved;
}

void pfs_heap_prefaulted(struct pfs_thread *t, uint64_t p, uint64_t block_end, uint32_t stack, int kind,
			 uint64_t start, uint64_t end)
{
	int saved = errno;
	pthread_mutex_lock(&heap_mutex);
	struct pfs_heap *h = carve(t, p, block_end, stack, kind);
	if (h)
		pfs_tracker->heap_prefaulted(h, start, end);
	pthread_mutex_unlock(&heap_mutex);
	errno = saved;
}

/* ---- another allocator's extents (heap.h) ----------------------------------- */

__thread int pfs_tls_in_alloc __attribute__((tls_model("initial-exec")));
int pfs_extents_on, pfs_extents_pending;

/*
 * The table only grows (an unmapped extent's end becomes 0, its slot is not
 * reused), so a thread reads it without the lock; entries are published by
 * the count.  Carved bits are set under heap_mutex.
 */
#define EXTENTS_MAX 2048
/*
 * Larger mappings stay whole: an allocator's extents are megabytes (a block
 * that large is the mapping's only block, and its site the mapping's), while
 * terabytes mapped before the shim are a sanitizer's shadow or a
 * reservation, whose pages an owner each would cost gigabytes to set.
 */
#define EXTENT_LEN_MAX (1ull << 30)
#define PENDING_MAX 16
static struct extent {
	uint64_t start, end;
	uint64_t *carved;
	struct pfs_heap h;
} extents[EXTENTS_MAX];
static unsigned nextents;
static __thread unsigned extent_hint;
static struct {
	uint64_t addr, len;
} pending[PENDING_MAX];

static inline int carved_bit(const struct extent *e, uint64_t i)
{
	return (__atomic_load_n(&e->carved[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1;
}

void pfs_heap_extent_mapped(uint64_t addr, uint64_t len)
{
	uint64_t page = pfs_proc.page_size, pages = (len + page - 1) / page;
	if (len > EXTENT_LEN_MAX)
		return;
	int saved = errno;
	pthread_mutex_lock(&heap_mutex);
	struct extent *e = nextents < EXTENTS_MAX ? &extents[nextents] : NULL;
	if (e && (e->carved = pfs_pool_alloc((pages + 63) / 64 * 8)) != NULL) {
		e->start = addr;
		e->end = addr + pages * page;
		e->h = (struct pfs_heap){.key = addr, .start = addr, .hwm = addr, .limit = UINT64_MAX, .priv = NULL};
		/* The tracker charges the mapping's pages to their carvers from now on, or keeps it whole. */
		if (pfs_tracker->extent(&e->h, e->end - e->start) == 0) {
			__atomic_store_n(&nextents, nextents + 1, __ATOMIC_RELEASE);
			__atomic_store_n(&pfs_extents_on, 1, __ATOMIC_RELAXED);
		} else {
			pfs_pool_free(e->carved, (pages + 63) / 64 * 8);
		}
	}
	pthread_mutex_unlock(&heap_mutex);
	errno = saved;
}

void pfs_heap_extent_pend(uint64_t addr, uint64_t len)
{
	pthread_mutex_lock(&heap_mutex);
	for (unsigned i = 0; i < PENDING_MAX; i++)
		if (!pending[i].len) {
			pending[i].addr = addr;
			pending[i].len = len;
			__atomic_store_n(&pfs_extents_pending, 1, __ATOMIC_RELAXED);
			break;
		}
	pthread_mutex_unlock(&heap_mutex);
}

int pfs_heap_extent_take(uint64_t *addr, uint64_t *len)
{
	int found = 0;
	pthread_mutex_lock(&heap_mutex);
	__atomic_store_n(&pfs_extents_pending, 0, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < PENDING_MAX; i++)
		if (pending[i].len) {
			if (found) {
				pfs_extents_pending = 1;
				break;
			}
			*addr = pending[i].addr;
			*len = pending[i].len;
			pending[i].len = 0;
			found = 1;
		}
	pthread_mutex_unlock(&heap_mutex);
	return found;
}

/* The live extent holding addr, or NULL; the thread's last one is tried first. */
static struct extent *extent_find(uint64_t addr)
{
	unsigned n = __atomic_load_n(&nextents, __ATOMIC_ACQUIRE), h = extent_hint;
	if (h < n && addr >= extents[h].start && addr < __atomic_load_n(&extents[h].end, __ATOMIC_RELAXED))
		return &extents[h];
	for (unsigned i = n; i-- > 0;)
		if (addr >= extents[i].start && addr < __atomic_load_n(&extents[i].end, __ATOMIC_RELAXED)) {
			extent_hint = i;
			return &extents[i];
		}
	return NULL;
}

void pfs_heap_extent_carve(struct pfs_thread *t, uint64_t p, uint64_t end, int kind, uintptr_t ret, uintptr_t sp)
{
	struct extent *e = extent_find(p);
	if (!e || end > e->end || end <= p)
		return; /* not in an extent: a block of a mapping of its own, tracked as one */
	uint64_t page = pfs_proc.page_size, first = (p - e->start) / page, last = (end - 1 - e->start) / page;
	uint64_t i = first;
	while (i <= last && carved_bit(e, i))
		i++;
	if (i <= last) {
		uint32_t stack = pfs_site_lookup(t, kind, ret, sp);
		int saved = errno;
		pthread_mutex_lock(&heap_mutex);
		if (e->h.priv && e->end) {
			for (i = first; i <= last;) {
				if (carved_bit(e, i)) {
					i++;
					continue;
				}
				uint64_t from = i;
				for (; i <= last && !carved_bit(e, i); i++)
					__atomic_or_fetch(&e->carved[i / 64], 1ull << (i % 64), __ATOMIC_RELAXED);
				pfs_tracker->heap_carved(t, &e->h, e->start + from * page, e->start + i * page, 0, stack,
							 kind);
			}
		}
		pthread_mutex_unlock(&heap_mutex);
		errno = saved;
	}
	/* The window: the run of carved pages around the block, a few words of the bitmap each way. */
	uint64_t npages = (e->end - e->start) / page, lo = first, hi = last + 1;
	while (lo > 0 && first - lo < 512 && carved_bit(e, lo - 1))
		lo--;
	while (hi < npages && hi - last < 512 && carved_bit(e, hi))
		hi++;
	t->carve_lo = e->start + lo * page;
	t->carve_hi = e->start + hi * page;
}

/* The next live extent from *k on that meets [start, end), or NULL; heap_mutex held. */
static struct extent *extent_meeting(unsigned *k, uint64_t start, uint64_t end)
{
	for (; *k < nextents; (*k)++) {
		struct extent *e = &extents[*k];
		if (e->end && end > e->start && start < e->end) {
			(*k)++;
			return e;
		}
	}
	return NULL;
}

/* Pages of [start, end) changed: a window of this thread's over them is carved no more. */
static void window_forget(struct pfs_thread *t, uint64_t start, uint64_t end)
{
	if (t && t->carve_hi > start && t->carve_lo < end)
		t->carve_lo = t->carve_hi = 0;
}

void pfs_heap_extent_dropped(struct pfs_thread *t, uint64_t addr, uint64_t len)
{
	if (!__atomic_load_n(&pfs_extents_on, __ATOMIC_RELAXED))
		return;
	uint64_t page = pfs_proc.page_size, end = addr + len;
	int saved = errno;
	pthread_mutex_lock(&heap_mutex);
	for (unsigned k = 0; k < nextents;) {
		struct extent *e = extent_meeting(&k, addr, end);
		if (!e)
			break;
		/* whole pages inside the range lost their contents: the next block there carves them */
		uint64_t from = addr > e->start ? (addr - e->start + page - 1) / page : 0;
		uint64_t to = ((end < e->end ? end : e->end) - e->start) / page;
		for (uint64_t i = from; i < to; i++)
			__atomic_and_fetch(&e->carved[i / 64], ~(1ull << (i % 64)), __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&heap_mutex);
	window_forget(t, addr, end);
	errno = saved;
}

unsigned pfs_heap_extent_cut(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t keep[4])
{
	unsigned n = 0;
	if (!__atomic_load_n(&pfs_extents_on, __ATOMIC_RELAXED))
		return 0;
	uint64_t page = pfs_proc.page_size, start = addr & ~(page - 1), end = (addr + len + page - 1) & ~(page - 1);
	int saved = errno;
	pthread_mutex_lock(&heap_mutex);
	for (unsigned k = 0; k < nextents;) {
		struct extent *e = extent_meeting(&k, start, end);
		if (!e)
			break;
		/* The allocator trims what it mapped to align it: the parts left are extents again. */
		if (e->start < start && n < 4) {
			keep[n++] = e->start;
			keep[n++] = start;
		}
		if (e->end > end && n < 4) {
			keep[n++] = end;
			keep[n++] = e->end;
		}
		__atomic_store_n(&e->end, 0, __ATOMIC_RELAXED);
		e->h.priv = NULL;
	}
	pthread_mutex_unlock(&heap_mutex);
	window_forget(t, start, end);
	errno = saved;
	return n / 2;
}

void pfs_heap_lock(void)
{
	pthread_mutex_lock(&heap_mutex);
}

void pfs_heap_unlock(void)
{
	pthread_mutex_unlock(&heap_mutex);
}

void pfs_heap_child(void)
{
	heap_mutex = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
}
