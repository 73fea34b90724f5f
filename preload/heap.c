/* Heap pages charged by carving (heap.h). */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#include "alloc_glibc.h"
#include "heap.h"
#include "proc.h"
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
	pthread_mutex_init(&heap_mutex, NULL);
}
