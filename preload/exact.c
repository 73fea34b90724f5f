/*
 * Exact mode (pfs_tracker_exact, tracker.h): the program's tracked memory
 * registered with a userfaultfd (uffd.c) for missing pages, and for
 * write-protect after a fork; the handler processes (uffd_handler.c)
 * resolve each fault the way the kernel would and log it as an event of a
 * FAULTS record.  Attribution (which allocation owns the page) is the
 * analyzer's, from the ALLOC / FREE / CARVE records; this file keeps what
 * it must register again after a fork, and registers heaps as carving
 * (heap.c) reaches them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "alloc_glibc.h"
#include "arena.h"
#include "fbatch.h"
#include "heap.h"
#include "kcompat.h"
#include "msg.h"
#include "proc.h"
#include "sites.h"
#include "thread.h"
#include "tracker.h"
#include "uffd.h"
#include "uffd_handler.h"

#include <uthash.h>

/* A range registered with the descriptor: what a fork must protect, and register again in the child. */
struct xrange {
	UT_hash_handle hh; /* keyed by start */
	uint64_t start, len;
	uint64_t alloc_seq;
	uint32_t stack;
	uint8_t kind;
	uint8_t heap;
	uint8_t cowable;	/* write-protected at a fork */
	uint8_t not_inherited;	/* MADV_DONTFORK or MADV_WIPEONFORK: a fork shares nothing of it */
	uint8_t private_anon;	/* cowable as the hooks said (fast mode's, should it take over) */
};

static int enabled;
static int opened = -1;	/* the descriptor from init until the handlers take it */
static uint64_t page_size = 4096;
static pthread_mutex_t xlock = PTHREAD_MUTEX_INITIALIZER; /* ranges */
static struct xrange *ranges;
#define HEAPS_SEEN 64
static struct pfs_heap *heaps_seen[HEAPS_SEEN]; /* under heap.c's lock */
static unsigned nheaps_seen;
static int gone_said;

static int exact_init(const char **why)
{
	page_size = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	int fd = pfs_uffd_open(why);
	if (fd < 0)
		return fd;
	opened = fd;
	return 0;
}

static int adopting; /* the start's adoption: pre-start memory is being registered (exact_add) */

static int exact_start(const char **why)
{
	int err = pfs_uffd_handlers_start(opened, why);
	/* The program keeps no copy: the handlers' are the only ones. */
	close(opened);
	opened = -1;
	if (err) {
		pfs_uffd_handlers_forget();
		return err;
	}
	enabled = 1;
	adopting = 1;
	return 0;
}

/* The start's adoption is over: what a range holds when registered is its baseline again. */
static void exact_adopted(struct pfs_thread *t, int touched)
{
	(void)t, (void)touched;
	adopting = 0;
}

/*
 * THP could have backed [start, end) natively: it holds an aligned 2 MiB,
 * and THP is "always", or "madvise" and the range was advised so (noted
 * before registration by a policy, or after by the program).
 */
enum { THP_NEVER, THP_MADVISE, THP_ALWAYS, THP_UNKNOWN };
static int thp_mode = THP_UNKNOWN;
#define ADVISED_MAX 16
static struct {
	uint64_t start, end;
} advised[ADVISED_MAX]; /* recent MADV_HUGEPAGE ranges, under xlock */
static unsigned advised_next;

static int read_thp_mode(void)
{
	char buf[128];
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return THP_NEVER;
	buf[n] = 0;
	return strstr(buf, "[always]") ? THP_ALWAYS : strstr(buf, "[madvise]") ? THP_MADVISE : THP_NEVER;
}

static int holds_huge_page(uint64_t start, uint64_t end)
{
	const uint64_t huge = 2ull << 20;
	return ((start + huge - 1) & ~(huge - 1)) + huge <= end;
}

static int thp_possible(uint64_t start, uint64_t end)
{
	if (thp_mode == THP_UNKNOWN)
		thp_mode = read_thp_mode();
	if (thp_mode == THP_NEVER || !holds_huge_page(start, end))
		return 0;
	if (thp_mode == THP_ALWAYS)
		return 1;
	for (unsigned i = 0; i < ADVISED_MAX; i++)
		if (advised[i].start < end && start < advised[i].end)
			return 1;
	return 0;
}

static void write_ureg(struct pfs_thread *t, uint64_t start, uint64_t len, uint64_t alloc_seq, int result,
		       uint16_t flags, uint32_t present)
{
	struct pfs_rec_ureg *r = t ? pfs_rec_begin(&t->w, sizeof(*r)) : NULL;
	if (!r)
		return;
	r->time_ns = pfs_now_ns();
	r->addr = start;
	r->length = len;
	r->alloc_seq = alloc_seq;
	r->result = result;
	r->present = present;
	pfs_rec_end(r, PFS_REC_UREG, flags, sizeof(*r));
}

static void range_drop(struct xrange *r)
{
	HASH_DEL(ranges, r);
	pfs_pool_free(r, sizeof(*r));
}

/*
 * The pages of [from, from + len) present now, registered just before;
 * with `touches`, each one is a first touch of this thread now (an event),
 * its fault taken before the range was registered.  xlock held (the batch).
 */
static uint32_t held_pages(struct pfs_thread *t, uint64_t from, uint64_t len, int touches)
{
	static struct pfs_fbatch cb;
	unsigned char vec[256];
	uint32_t present = 0;
	for (uint64_t off = 0; off < len; off += sizeof(vec) * page_size) {
		uint64_t n = (len - off) / page_size < sizeof(vec) ? (len - off) / page_size : sizeof(vec);
		if (mincore((void *)(uintptr_t)(from + off), n * page_size, vec))
			break;
		for (uint64_t i = 0; i < n; i++)
			if (vec[i] & 1) {
				present++;
				if (touches)
					pfs_fbatch_add(&cb, t, from + off + i * page_size, t->tid, PFS_FEV_WRITE, 0, -1,
						       pfs_now_ns());
			}
	}
	if (touches)
		pfs_fbatch_flush(&cb, t);
	return present;
}

/*
 * What a range holds when it is registered is its baseline, but for memory
 * touched on its way to the program (PFS_MEM_TOUCHED: realloc's copy into a
 * new mapping) and memory made before the shim started (pre-start, at the
 * start's adoption; a later mremap moves what it holds): their pages held
 * are first touches, as in fast mode.
 */
static void exact_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack,
		      int kind, unsigned mem)
{
	int cowable = (mem & PFS_MEM_COWABLE) != 0;
	/*
	 * Stacks grow and take signal frames, an object's .data is a file
	 * mapping the kernel will not register: exact mode by userfaultfd leaves
	 * them to fast mode's scans and to fault events.  The shim's own memory
	 * never: the handlers write it, and would wait for themselves.
	 */
	if (!enabled || !len || kind == PFS_KIND_STACK || kind == PFS_KIND_THREAD_STACK || kind == PFS_KIND_DATA ||
	    kind == PFS_KIND_SELF)
		return;
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	int saved = errno, wp;
	pthread_mutex_lock(&xlock);
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	if (!r->heap && r->start < end && start < r->start + r->len)
		range_drop(r); /* stale: its end was not seen (MAP_FIXED over it) */
	int err = pfs_uffd_register(start, end - start, &wp);
	int gone = err && pfs_uffd_handlers_gone(); /* kept for fast mode, which takes over at the next tick */
	uint32_t present = 0;
	if (!err && t && ((mem & PFS_MEM_TOUCHED) || (adopting && kind == PFS_KIND_PRESTART)))
		present = held_pages(t, start, end - start, 1);
	uint16_t flags = (uint16_t)((wp ? PFS_UREG_WP : 0) | (thp_possible(start, end) ? PFS_UREG_THP : 0) |
				    (present ? PFS_UREG_PRESENT : 0));
	if (!gone)
		write_ureg(t, start, end - start, alloc_seq, err, flags, present);
	if ((!err || gone) && (r = pfs_pool_alloc(sizeof(*r))) != NULL) {
		r->start = start;
		r->len = end - start;
		r->alloc_seq = alloc_seq;
		r->stack = stack;
		r->kind = (uint8_t)kind;
		r->cowable = (uint8_t)(cowable && wp);
		r->private_anon = (uint8_t)cowable;
		HASH_ADD(hh, ranges, start, sizeof(r->start), r);
	}
	pthread_mutex_unlock(&xlock);
	errno = saved;
}

/*
 * madvise(MADV_HUGEPAGE) succeeded on [addr, addr + len) (the program's, or
 * a policy's): where THP is "madvise", that memory could have had huge
 * pages, which registration stops; the report is told.
 */
/* What a fork will do with the ranges [addr, addr + len) covers whole (DONTFORK, WIPEONFORK and their undoing). */
static void fork_advice(uint64_t addr, uint64_t len, int advice)
{
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	pthread_mutex_lock(&xlock);
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	if (!r->heap && r->start >= start && r->start + r->len <= end)
		r->not_inherited = advice == MADV_DONTFORK || advice == MADV_WIPEONFORK;
	pthread_mutex_unlock(&xlock);
}

static void exact_advised(struct pfs_thread *t, uint64_t addr, uint64_t len, int advice)
{
	if (enabled && len &&
	    (advice == MADV_DONTFORK || advice == MADV_DOFORK || advice == MADV_WIPEONFORK || advice == MADV_KEEPONFORK))
		fork_advice(addr, len, advice);
	if (!enabled || !len || advice != MADV_HUGEPAGE)
		return;
	if (thp_mode == THP_UNKNOWN)
		thp_mode = read_thp_mode();
	if (thp_mode != THP_MADVISE)
		return; /* "always": flagged when registered; "never": nothing to lose */
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	pthread_mutex_lock(&xlock);
	advised[advised_next % ADVISED_MAX].start = start;
	advised[advised_next % ADVISED_MAX].end = end;
	advised_next++;
	/* Advice after registration: the registered ranges it covers lose their huge pages now. */
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	{
		uint64_t lo = r->start > start ? r->start : start, hi = r->start + r->len < end ? r->start + r->len : end;
		if (lo < hi && holds_huge_page(lo, hi))
			write_ureg(t, lo, hi - lo, r->alloc_seq, 0, PFS_UREG_THP, 0);
	}
	pthread_mutex_unlock(&xlock);
}

/* The allocation's range starting in the page of `addr` (heaps are not allocations); xlock held. */
static struct xrange *range_at(uint64_t addr)
{
	uint64_t start = addr & ~(page_size - 1);
	struct xrange *r;
	HASH_FIND(hh, ranges, &start, sizeof(start), r);
	return r && !r->heap ? r : NULL;
}

static void exact_free_at(struct pfs_thread *t, uint64_t addr)
{
	(void)t;
	if (!enabled)
		return;
	pthread_mutex_lock(&xlock);
	struct xrange *r = range_at(addr);
	if (r)
		range_drop(r);
	pthread_mutex_unlock(&xlock);
}

/*
 * Cuts [start, end) out of the ranges (heaps too if `heaps`): what lies
 * outside stays; with `fd` >= 0 the part inside is unregistered from it.
 * xlock held.
 */
static void cut(uint64_t start, uint64_t end, int heaps, int fd)
{
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	{
		uint64_t rend = r->start + r->len;
		if ((r->heap && !heaps) || r->start >= end || start >= rend)
			continue;
		if (fd >= 0) {
			uint64_t lo = r->start > start ? r->start : start, hi = rend < end ? rend : end;
			struct uffdio_range in = {.start = lo, .len = hi - lo};
			pfs_sys_ioctl(fd, UFFDIO_UNREGISTER, &in);
		}
		struct xrange keep = *r;
		range_drop(r);
		uint64_t pieces[2][2] = {{keep.start, start}, {end, rend}};
		for (int i = 0; i < 2; i++) {
			if (pieces[i][0] >= pieces[i][1] || pieces[i][0] < keep.start || pieces[i][1] > rend)
				continue;
			struct xrange *n = pfs_pool_alloc(sizeof(*n));
			if (!n)
				continue;
			*n = keep;
			memset(&n->hh, 0, sizeof(n->hh));
			n->start = pieces[i][0];
			n->len = pieces[i][1] - pieces[i][0];
			HASH_ADD(hh, ranges, start, sizeof(n->start), n);
		}
	}
}

/* What stays mapped stays registered: the pieces outside are kept. */
static void exact_unmap(struct pfs_thread *t, uint64_t addr, uint64_t len)
{
	(void)t;
	if (!enabled || !len)
		return;
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	pthread_mutex_lock(&xlock);
	cut(start, end, 0, -1);
	pthread_mutex_unlock(&xlock);
}

/*
 * The program registers [addr, addr + len) with its own userfaultfd: the
 * shim steps back (unregisters what it registered there, and forgets it;
 * a later registration of its own there fails harmlessly, logged as
 * unobservable), so that the program's registration finds the memory free
 * (it failed with EBUSY).  Faults there are the program's to serve, and
 * not counted.  Said once.
 */
static void exact_release(struct pfs_thread *t, uint64_t addr, uint64_t len, int fd)
{
	(void)fd;
	if (!enabled || !len)
		return;
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	int saved = errno, ours = pfs_uffd_borrow();
	pthread_mutex_lock(&xlock);
	cut(start, end, 1, ours);
	write_ureg(t, start, end - start, 0, -EBUSY, 0, 0);
	pthread_mutex_unlock(&xlock);
	if (ours >= 0)
		close(ours);
	static int said;
	if (!said++)
		pfs_warn("exact mode: process %d serves its own page faults with userfaultfd; the shim steps back from the "
			 "memory it registers (%llu KiB at 0x%llx first), whose faults are not counted",
			 (int)pfs_proc.pid, (unsigned long long)((end - start) >> 10), (unsigned long long)start);
	errno = saved;
}

static void exact_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len)
{
	(void)old_len;
	if (!enabled)
		return;
	pthread_mutex_lock(&xlock);
	struct xrange *r = range_at(old), moved;
	int found = r != NULL;
	if (found) {
		moved = *r;
		range_drop(r);
	}
	pthread_mutex_unlock(&xlock);
	/* The pages that moved are present at the new place: only the rest can fault. */
	if (found)
		exact_add(t, new_addr, new_len, moved.alloc_seq, moved.stack, moved.kind,
			  moved.private_anon ? PFS_MEM_COWABLE : 0);
}

/* ---- heaps ------------------------------------------------------------------- */

/*
 * Registers the heap from its registered end to its top.  The pages of that
 * stretch that are already present were touched by malloc on its way to
 * this block (a fresh top chunk's header, the block's own): first touches
 * of this thread now, unless this is the heap's first registration (then
 * they are older than the shim's view of the heap).
 */
static void heap_register(struct pfs_thread *t, struct pfs_heap *h, uint64_t top, int first)
{
	if (top <= h->limit)
		return;
	uint64_t from = h->limit, len = top - from;
	int wp;
	int err = pfs_uffd_register(from, len, &wp);
	uint32_t present = 0;
	if (!err) {
		present = held_pages(t, from, len, !first);
		h->limit = top;
		struct xrange *r = pfs_pool_alloc(sizeof(*r));
		if (r) {
			r->start = from;
			r->len = len;
			r->heap = 1;
			r->kind = PFS_KIND_MALLOC;
			r->cowable = (uint8_t)wp;
			r->private_anon = 1;
			HASH_ADD(hh, ranges, start, sizeof(r->start), r);
		}
	}
	write_ureg(t, from, len, 0, err,
		   (uint16_t)(PFS_UREG_HEAP | (wp ? PFS_UREG_WP : 0) | (present && !first ? PFS_UREG_PRESENT : 0)),
		   present);
	if (err)
		h->limit = top; /* said once; not tried again for this stretch */
}

/*
 * The page past the one that holds the heap's top chunk header is made
 * present now, by the shim, before malloc's next split writes the new
 * top's size there.  A first touch by malloc itself waits for the handler
 * inside malloc, between moving the top and writing its size, and a signal
 * taken during that wait runs with the top half made (a handler that
 * mallocs then aborts in sysmalloc); here the wait is in the shim, with
 * malloc's state whole.  The fault is the one malloc would have taken,
 * taken a little earlier through the handler (an event like any other,
 * charged to the page's carver).  What remains: a split that jumps more
 * than that page (a block of more than a page from the top) still faults
 * inside malloc, as it does natively (a signal pending at a fault's return
 * runs before the faulting store is made again; natively the window is
 * the fault's own length).
 */
static void populate_ahead(uint64_t page)
{
#if defined(__x86_64__)
	/*
	 * An atomic write of nothing: safe against a thread's malloc writing there
	 * at the same time, and a user-mode fault like malloc's own (the kernel
	 * counts it as the program's; MADV_POPULATE_WRITE's fault is the kernel's
	 * own and left exact mode's count of not-present faults at a fifth of
	 * native for perl, a third for sqlite3: make fidelity).
	 */
	__asm__ volatile("lock orq $0, (%0)" : : "r"(page) : "memory");
#else
	static int no_populate; /* MADV_POPULATE_WRITE is Linux 5.14 */
	if (no_populate)
		return;
	int r;
	do
		r = pfs_sys_madvise((void *)(uintptr_t)page, page_size, MADV_POPULATE_WRITE);
	while (r && errno == EINTR);
	if (r && errno == EINVAL)
		no_populate = 1;
#endif
}

/* The heaps exact mode registers, for fast mode should it take over (heap.c's lock held). */
static void see_heap(struct pfs_heap *h)
{
	for (unsigned i = 0; i < nheaps_seen; i++)
		if (heaps_seen[i] == h)
			return;
	if (nheaps_seen < HEAPS_SEEN)
		heaps_seen[nheaps_seen++] = h;
}

/*
 * Carving (heap.c) reached [from, to): a CARVE record charges those pages to
 * the block's site, and the heap is registered up to its end now.  The
 * heap's limit is how far it is registered: the carving window stops
 * there, so a block beyond it comes back here to register the growth.
 */
static void exact_heap_carved(struct pfs_thread *t, struct pfs_heap *h, uint64_t from, uint64_t to, uint64_t top,
			      uint32_t stack, int kind)
{
	if (!enabled)
		return;
	if (h->limit == UINT64_MAX)
		h->limit = h->start; /* nothing registered yet */
	if (to > from) {
		pfs_stack_used(t, stack);
		pfs_rec_carve(&t->w, from, to, stack, kind);
	}
	int first = h->limit == h->start;
	if (first)
		see_heap(h);
	uint64_t max = h->key == PFS_HEAP_MAIN ? UINT64_MAX : PFS_HEAP_MAX;
	pthread_mutex_lock(&xlock);
	if (top > h->limit && top - h->start <= max)
		heap_register(t, h, top, first);
	uint64_t limit = h->limit;
	pthread_mutex_unlock(&xlock);
	if (to > from && to + page_size <= limit && to + page_size <= top)
		populate_ahead(to);
}

/*
 * Heap h gave [start, end) back (heap.c): glibc lowered the break (that part
 * is unmapped, its registration gone) or dropped a thread heap's pages.  The
 * ranges there are forgotten and the heap counts as registered up to start
 * only, so that its next growth is registered again and its faults seen.
 */
static void exact_heap_released(struct pfs_heap *h, uint64_t start, uint64_t end)
{
	if (!enabled)
		return;
	pthread_mutex_lock(&xlock);
	cut(start, end, 1, -1);
	if (h->limit != UINT64_MAX && h->limit > start)
		h->limit = start;
	pthread_mutex_unlock(&xlock);
}

/* ---- fork ---------------------------------------------------------------------- */

static void exact_lock(void)
{
	pthread_mutex_lock(&xlock);
}

static void exact_unlock(void)
{
	pthread_mutex_unlock(&xlock);
}

/* Present pages of every range are shared with the child now: their first write is a copy. */
static void protect_all(void)
{
	int fd = pfs_uffd_borrow();
	if (fd < 0)
		return;
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	if (r->cowable && !r->not_inherited) {
		struct uffdio_writeprotect wp = {.range = {.start = r->start, .len = r->len},
						 .mode = UFFDIO_WRITEPROTECT_MODE_WP};
		pfs_sys_ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
	}
	close(fd);
}

static void exact_fork_parent(struct pfs_thread *t)
{
	(void)t;
	if (!enabled)
		return;
	int saved = errno;
	pthread_mutex_lock(&xlock);
	protect_all();
	pthread_mutex_unlock(&xlock);
	errno = saved;
}

/*
 * The child: the inherited descriptor belongs to the parent's memory and
 * the child's mappings lost their registration (no UFFD_FEATURE_EVENT_FORK).
 * A descriptor and handlers of its own, every range registered again and
 * announced (ALLOC with PFS_ALLOC_INHERITED, so the child's faults there
 * have an owner in its log), then protected: pages present at the fork
 * are the parent's, the child's first write to one is a copy.
 */
static void exact_fork_child(struct pfs_thread *t, pfs_announce_fn announce)
{
	xlock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	pfs_uffd_handlers_forget(); /* the parent's handlers' sockets and pidfds: not ours */
	gone_said = 0;
	if (!enabled)
		return;
	enabled = 0;
	const char *why = "";
	int err = exact_init(&why);
	if (!err)
		err = exact_start(&why);
	if (err) {
		pfs_warn("fork: exact mode cannot continue in process %d: %s (%s); its faults are not counted",
			 (int)pfs_proc.pid, why, strerror(-err));
		return;
	}
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	{
		int wp;
		if (r->not_inherited) { /* not in the child (DONTFORK), or wiped there (WIPEONFORK): not tracked */
			range_drop(r);
			continue;
		}
		if (!r->heap)
			announce(t, &r->alloc_seq, r->kind, r->stack, r->start, r->len);
		int e = pfs_uffd_register(r->start, r->len, &wp);
		write_ureg(t, r->start, r->len, r->heap ? 0 : r->alloc_seq, e,
			   (uint16_t)((r->heap ? PFS_UREG_HEAP : 0) | (wp ? PFS_UREG_WP : 0)), 0);
		if (e)
			range_drop(r);
		else	/* shared memory is never copied: not write-protected (its writes were taken for copies) */
			r->cowable = (uint8_t)(wp && r->private_anon);
	}
	protect_all();
}

/* ---- the handlers gone: fast mode from then on -------------------------------- */

static void say_gone(const char *how)
{
	if (!gone_said++)
		pfs_warn("exact mode: %s in process %d; %s", pfs_uffd_handlers_gone(), (int)pfs_proc.pid, how);
}

/*
 * The handlers stopped while the program runs (one was killed: the others
 * end with it, and the kernel released every registration).  Fast mode
 * takes over: every range exact mode knew becomes a region (its pages held
 * now its baseline), and each heap is carved from its mark on (the pages
 * below were exact mode's).  Touches between the handlers' end and now
 * are not counted.  Heap lock, then exact mode's, as at a fork.
 */
static void hand_over(struct pfs_thread *t)
{
	pfs_heap_lock();
	pthread_mutex_lock(&xlock);
	if (!enabled) {
		pthread_mutex_unlock(&xlock);
		pfs_heap_unlock();
		return;
	}
	enabled = 0;
	const char *why = "";
	int err = pfs_tracker_fast.init(&why);
	if (!err)
		err = pfs_tracker_fast.start(&why);
	if (!err) {
		struct xrange *r, *tmp;
		HASH_ITER(hh, ranges, r, tmp)
		{
			if (!r->heap)
				pfs_tracker_fast.add(t, r->start, r->len, r->alloc_seq, r->stack, r->kind,
						      r->private_anon ? PFS_MEM_COWABLE : 0);
			range_drop(r);
		}
		pfs_tracker_fast.adopted(t, 0); /* their baselines, in one walk */
		for (unsigned i = 0; i < nheaps_seen; i++) {
			struct pfs_heap *h = heaps_seen[i];
			h->start = (h->hwm + page_size - 1) & ~(page_size - 1);
			h->limit = UINT64_MAX;
		}
		pfs_tracker = &pfs_tracker_fast;
		pfs_proc.mode = PFS_MODE_FAST;
	} else {
		pfs_tracker = &pfs_tracker_off;
		pfs_proc.mode = PFS_MODE_OFF;
	}
	pthread_mutex_unlock(&xlock);
	pfs_heap_unlock();
	if (err) {
		char how[256];
		snprintf(how, sizeof(how), "fast mode cannot take over (%s); its faults are no longer counted", why);
		say_gone(how);
	} else {
		say_gone("fast mode counts its touches from now on");
	}
}

static void exact_tick(struct pfs_thread *t)
{
	if (PFS_UNLIKELY(pfs_uffd_handlers_gone() != NULL) && enabled)
		hand_over(t);
}

static void exact_end(struct pfs_thread *t)
{
	(void)t;
	if (!enabled)
		return;
	pfs_uffd_handlers_flush();
	if (pfs_uffd_handlers_gone())
		say_gone("its faults since then are not counted");
}

const struct pfs_tracker pfs_tracker_exact = {
	.name = "exact",
	.init = exact_init,
	.start = exact_start,
	.add = exact_add,
	.adopted = exact_adopted,
	.free_at = exact_free_at,
	.unmap = exact_unmap,
	.remap = exact_remap,
	.sync = pfs_nop_range, /* every fault is an event already */
	.advising = pfs_nop_range,
	.advised = exact_advised,
	.release = exact_release,
	.tick = exact_tick,
	.thread_coming = pfs_nop_thread,
	.heap_carved = exact_heap_carved,
	.extent = pfs_nop_extent, /* an extent stays one allocation: its faults go to the mapping's site */
	.heap_prefaulted = pfs_nop_heap_pages,
	.heap_released = exact_heap_released,
	.lock = exact_lock,
	.unlock = exact_unlock,
	.fork_parent = exact_fork_parent,
	.fork_child = exact_fork_child,
	.end = exact_end,
	.counts = pfs_uffd_counts,
};
