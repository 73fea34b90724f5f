/*
 * Exact mode on the kernel's own fault events (pfs_tracker_pevent,
 * tracker.h): the page-fault software event of this process
 * (perf_event_open, PERF_COUNT_SW_PAGE_FAULTS_MIN, every fault sampled with
 * its thread, time, address and instruction; pevent_ring.c reads it)
 * observed, nothing trapped.  Each sample on tracked memory becomes a
 * fault event of a FAULTS record (fbatch.c), as exact mode's userfaultfd
 * handlers write them, so the analyzer's attribution is the same.
 *
 * The memory is fast mode's regions (fast.c, regions.c: the same table,
 * the same rules for mappings, heaps, forks and what no hook saw), fed by
 * the events before every count (pfs_fast_feed): the page map then finds
 * only what no event said (the kernel's own touches inside system calls,
 * where perf_event_paranoid hides the kernel's side; samples the kernel
 * lost), counted as fast mode counts them.
 *
 * First touch or copy-on-write, without privilege: the pages a region held
 * at the last fork (page map, as fast mode reads it) make the first later
 * fault on each a copy, in the parent and in the child.  Any other first
 * fault on a page is a first touch; a second fault on a page already
 * counted with no fork between (a write after a read that mapped the zero
 * page, a page collapsed or migrated) is no new first touch and no event.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/single_threaded.h>

#include "fbatch.h"
#include "heap.h"
#include "msg.h"
#include "pevent_ring.h"
#include "proc.h"
#include "regions.h"
#include "sites.h"
#include "thread.h"
#include "tracker.h"

/*
 * Two sets of rings: the one read, and the one a larger ring opens into
 * (ring_grow).  Under the regions lock once started.
 */
static struct pfs_pev_set sets[2];
static struct pfs_pev_set *events = &sets[0];
static struct pfs_fbatch batch; /* under the regions lock */
static struct pfs_fbatch again = {.rec_flags = PFS_FAULTS_AGAIN}; /* faults of threads that met at a page (below) */

/*
 * The fault that made each page present lately (a table by page, slots
 * overwritten): threads that touch a page not present at the same moment
 * each take a fault, and the kernel counts each; the later ones' samples
 * find the page counted.  One from another thread within AGAIN_NS of the
 * first is such a fault: counted, without a page of its own
 * (PFS_FAULTS_AGAIN).  Java's G1 heap: 38 % of its faults.  A slot is of
 * one process: a fork starts a new generation.
 */
#define FIRST_SLOTS 1024u
#define AGAIN_NS 1000000u
static struct first {
	uint64_t page, time_ns;
	uint32_t tid;
	uint16_t flags, gen;
} firsts[FIRST_SLOTS];
static uint16_t first_gen = 1;

static struct first *first_slot(uint64_t page)
{
	return &firsts[(page * 0x9e3779b97f4a7c15ull) >> 54 & (FIRST_SLOTS - 1)];
}
static uint64_t page_size = 4096;
static uint64_t repeats, outside, lost_said;
static int full_said; /* a ring found full was said, or the kernel's count of what it lost */

/*
 * Ring size per CPU.  A single-threaded program is drained only when it
 * calls the allocator (periodic.h), so every fault between two calls must
 * fit: a storm writes one sample per page.  The kernel allocates and
 * zeroes a ring when it is mapped (4 MiB per CPU was half of this mode's
 * process start), so a process starts with a small ring and a larger one
 * is opened while the memory it tracks could fault more than half of it
 * full (ring_fits), up to 4 MiB: 131,072 faults (512 MiB of 4 KiB pages;
 * 104,857 with the faulting instruction).  The kernel's refusal halves
 * the first (perf_event_mlock_kb, ulimit -l) and keeps the ring there is.
 */
#define RING_PAGES_START 64u
#define RING_PAGES_MAX 1024u
#define RING_PAGES_MIN 8u

/*
 * Tracked pages whose fault may come before the next drain, an upper bound
 * counted on as memory comes (ring_fits): pages that no count has found
 * held, and pages held at a fork that are not copied yet.
 */
static uint64_t unseen;
static int grow_refused; /* the kernel refused a larger ring: not asked again */
static uint64_t recount_regions, recount_ns; /* the regions at the last count, and its time */
static int thread_came, forked; /* the program started a thread; this process is a forked child */

/*
 * The process has had one thread since its events were opened.  glibc's
 * flag stays false in the child of a multi-threaded parent, which has the
 * forking thread alone until it starts one (pevent_thread_coming).
 */
static int one_thread(void)
{
	return !thread_came && (__libc_single_threaded || forked);
}

static int open_events(struct pfs_pev_set *s, unsigned pages, unsigned min_pages, const char **why)
{
	struct pfs_pev_opts o = {
		.pid = 0,
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_PAGE_FAULTS_MIN,
		.ip = pfs_proc.cfg.touch_site,
		.try_kernel = 1,
		.inherit_threads = 1,
		.data_pages = pages,
		.min_pages = min_pages,
	};
	int err = pfs_pev_open(s, &o, why);
	if (!err)
		pfs_pev_close_fds(s); /* the mappings keep the events: no descriptor for the program to meet */
	return err;
}

static int pevent_start(const char **why);
static void pevent_heap_carved(struct pfs_thread *t, struct pfs_heap *h, uint64_t from, uint64_t to, uint64_t top,
			       uint32_t stack, int kind);
static void pevent_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack,
		       int kind, unsigned mem);
static void pevent_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len);
static void pevent_heap_released(struct pfs_heap *h, uint64_t start, uint64_t end);
static void pevent_tick(struct pfs_thread *t);
static void pevent_thread_coming(struct pfs_thread *t);
static void pevent_fork_parent(struct pfs_thread *t);
static void pevent_fork_child(struct pfs_thread *t, pfs_announce_fn announce);
static void pevent_counts(uint64_t *first, uint64_t *cow);

static int pevent_init(const char **why)
{
	struct pfs_tracker ops = pfs_tracker_fast;
	ops.name = "exact";
	ops.init = pevent_init;
	ops.start = pevent_start;
	ops.add = pevent_add;
	ops.remap = pevent_remap;
	ops.heap_carved = pevent_heap_carved;
	ops.heap_released = pevent_heap_released;
	ops.tick = pevent_tick;
	ops.thread_coming = pevent_thread_coming;
	ops.fork_parent = pevent_fork_parent;
	ops.fork_child = pevent_fork_child;
	ops.counts = pevent_counts;
	pfs_tracker_pevent = ops;
	page_size = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	int err = pfs_tracker_fast.init(why);
	if (err)
		return err;
	return open_events(events, RING_PAGES_START, RING_PAGES_MIN, why);
}

static void on_sample(const struct pfs_pev_sample *sm, void *arg)
{
	struct pfs_thread *t = arg;
	struct region *r = pfs_region_holding(sm->addr);
	if (!r) { /* no hook's memory: a pass finds it by its mapping (fast.c), counted by kind */
		outside++;
		return;
	}
	uint64_t i = (sm->addr - r->start) / page_size, page = sm->addr / page_size;
	unsigned flags = 0;
	if (r->cow && pfs_bits_get(&r->cow->bits, i)) {
		pfs_bits_clear(&r->cow->bits, i, i + 1);
		r->cow->left--;
		flags = PFS_FEV_COW | PFS_FEV_WRITE;
	} else if (pfs_bits_get(&r->bits, i)) {
		const struct first *f = first_slot(page);
		if (f->gen != first_gen || f->page != page || f->tid == sm->tid ||
		    sm->time_ns - f->time_ns > AGAIN_NS) {
			repeats++; /* a fault on a page counted before: after a read of the zero page, a migration */
			return;
		}
		flags = f->flags & (PFS_FEV_COW | PFS_FEV_WRITE);
		if (sm->ip && sm->user)
			flags |= PFS_FEV_SITE;
		pfs_fbatch_add(&again, t, sm->addr, sm->tid, flags, sm->ip, -1, sm->time_ns);
		return;
	}
	pfs_bits_set_count(&r->bits, i, i + 1);
	*first_slot(page) = (struct first){.page = page, .time_ns = sm->time_ns, .tid = sm->tid,
					   .flags = (uint16_t)flags, .gen = first_gen};
	long sys = -1;
	if (sm->ip && sm->user)
		flags |= PFS_FEV_SITE;
	pfs_fbatch_add(&batch, t, sm->addr, sm->tid, flags, sm->ip, sys, sm->time_ns);
}

/*
 * Every sample of set s so far into the regions and the log.  A ring found
 * full may have refused samples, though the kernel says how many
 * (PERF_RECORD_LOST) only with its next sample there, which a process at
 * its end does not write: said all the same.  Regions lock held.
 */
static void drain_set(struct pfs_pev_set *s, struct pfs_thread *t)
{
	/* the kernel writes a sample where more than its size is free (CIRC_SPACE) */
	int full = pfs_pev_fullest(s) + pfs_pev_sample_bytes(s) >= (uint64_t)s->data_pages * page_size;
	pfs_pev_drain(s, on_sample, t);
	pfs_fbatch_flush(&batch, t);
	pfs_fbatch_flush(&again, t);
	if (s->lost > lost_said) {
		if (!lost_said && !full_said)
			pfs_warn("exact mode: the kernel lost %llu fault events of process %d (its ring buffer was full); "
				 "their first touches are counted from the page map, without time, thread or touch site, "
				 "their copies after a fork not at all",
				 (unsigned long long)(s->lost - lost_said), (int)pfs_proc.pid);
		lost_said = s->lost;
	} else if (full && !lost_said && !full_said) {
		pfs_warn("exact mode: the ring buffer of process %d's fault events was full (%llu KiB a CPU): the kernel "
			 "may have lost events; their first touches are counted from the page map, without time, "
			 "thread or touch site, their copies after a fork not at all",
			 (int)pfs_proc.pid, (unsigned long long)s->data_pages * page_size / 1024);
	}
	full_said |= full;
}

/*
 * A ring of `pages` per CPU instead of the smaller one there is: the new
 * events are opened first, so every fault from then on is in the new
 * rings; the old ones are read to their end and closed (a fault in both is
 * read twice, the second a repeat: no event).  Only while the process has
 * one thread (one_thread): events opened now follow this thread and the
 * threads it starts later, not threads already running.  Regions lock held.
 */
static void ring_grow(struct pfs_thread *t, unsigned pages)
{
	if (pages > RING_PAGES_MAX)
		pages = RING_PAGES_MAX;
	if (!one_thread() || grow_refused || !events->n || pages <= events->data_pages)
		return;
	struct pfs_pev_set *old = events, *new = old == &sets[0] ? &sets[1] : &sets[0];
	const char *why = "";
	if (open_events(new, pages, old->data_pages * 2, &why)) {
		grow_refused = 1;
		return;
	}
	drain_set(old, t);
	new->samples = old->samples;
	new->lost = old->lost;
	pfs_pev_close(old);
	events = new;
}

/* Tracked pages not held at the last count, and held at a fork and not copied since.  Regions lock held. */
static uint64_t unseen_pages(void)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < pfs_regions_count(); i++) {
		struct region *r = pfs_region_at(i);
		uint64_t held = pfs_bits_count(&r->bits);
		n += (held < r->npages ? r->npages - held : 0) + pfs_region_cow_left(r);
	}
	return n;
}

/* The ring for `faults` to come before the next drain, with as many again to spare. */
static unsigned pages_for(uint64_t faults)
{
	uint64_t bytes = 3 * faults * pfs_pev_sample_bytes(events);
	unsigned p = RING_PAGES_START;
	while (p < RING_PAGES_MAX && (uint64_t)p * page_size < bytes)
		p *= 2;
	return p;
}

static uint64_t ring_bytes(void)
{
	return (uint64_t)events->data_pages * page_size;
}

/* The tracked pages not held counted, and the ring grown if they fill a quarter of it or more. */
static void ring_recount(struct pfs_thread *t)
{
	if (!one_thread() || grow_refused || !events->n || events->data_pages >= RING_PAGES_MAX)
		return;
	pfs_regions_lock();
	if (!t)
		t = pfs_thread_get();
	if (t) {
		drain_set(events, t);
		unseen = unseen_pages();
		recount_regions = pfs_regions_count();
		recount_ns = pfs_now_ns();
		if (unseen * pfs_pev_sample_bytes(events) > ring_bytes() / 4)
			ring_grow(t, pages_for(unseen));
	}
	pfs_regions_unlock();
}

/*
 * `pages` more may fault before the next drain (memory added, a heap's
 * pages carved): when the estimate reaches half the ring, the tracked
 * pages not held are counted, and the ring grows if they fill a quarter
 * of it or more (a walk over the regions once per quarter of a ring of
 * new memory at most).  Single-threaded only (ring_grow).
 */
static void ring_fits(struct pfs_thread *t, uint64_t pages)
{
	if (!one_thread() || grow_refused || !events->n || events->data_pages >= RING_PAGES_MAX)
		return;
	unseen += pages;
	if (unseen * pfs_pev_sample_bytes(events) > ring_bytes() / 2)
		ring_recount(t);
}

/*
 * The feed (pfs_fast_feed): every sample so far into the regions and the
 * log.  A ring found more than half full (memory no hook saw, a file read
 * through a mapping) or that lost samples is doubled.  Regions lock held.
 */
static void drain(struct pfs_thread *t)
{
	if (!t)
		t = pfs_thread_get();
	if (!t || !events->n)
		return;
	uint64_t full = pfs_pev_fullest(events), lost = events->lost;
	drain_set(events, t);
	if (full > ring_bytes() / 2 || events->lost > lost)
		ring_grow(t, events->data_pages * 2);
}

static int pevent_start(const char **why)
{
	int err = pfs_tracker_fast.start(why);
	if (err)
		return err;
	pfs_fast_feed(drain);
	return 0;
}

/*
 * Memory: fast mode's regions, and a ring that holds their faults.  In a
 * file or shared mapping, writable or not, the pages a pass finds that no
 * event named came with a read fault that did (fault-around: 16 pages, or
 * a whole large folio of the page cache): no fault of their own
 * (regions.c).  A major fault is no minor fault's event: the few a file
 * read from disk takes are not counted.  Not where the kernel's own touches
 * go unsampled: a read(2) into the mapping writes page by page.
 */
static void pevent_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack,
		       int kind, unsigned mem)
{
	if (events->kernel && (kind == PFS_KIND_MMAP_FILE || kind == PFS_KIND_SHARED))
		mem |= PFS_MEM_EVENT_FAULTS;
	pfs_tracker_fast.add(t, addr, len, alloc_seq, stack, kind, mem);
	ring_fits(t, (len + page_size - 1) / page_size);
}

static void pevent_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len)
{
	pfs_tracker_fast.remap(t, old, old_len, new_addr, new_len);
	if (new_len > old_len)
		ring_fits(t, (new_len - old_len + page_size - 1) / page_size);
}

static void pevent_heap_released(struct pfs_heap *h, uint64_t start, uint64_t end)
{
	pfs_tracker_fast.heap_released(h, start, end);
	if (end > start)
		ring_fits(NULL, (end - start) / page_size);
}

/* Heaps: fast mode's owners for its page-map counts, and a CARVE record for the events' attribution. */
static void pevent_heap_carved(struct pfs_thread *t, struct pfs_heap *h, uint64_t from, uint64_t to, uint64_t top,
			       uint32_t stack, int kind)
{
	pfs_tracker_fast.heap_carved(t, h, from, to, top, stack, kind);
	if (to > from && t) {
		pfs_stack_used(t, stack);
		pfs_rec_carve(&t->w, from, to, stack, kind);
	}
	if (to > from)
		ring_fits(t, (to - from) / page_size);
}

/*
 * Periodic work (a pass may find memory no hook saw: a region of its whole
 * mapping, whose pages may fault next): the ring counted again when the
 * regions changed, once per scan interval at most.
 */
static void pevent_tick(struct pfs_thread *t)
{
	pfs_tracker_fast.tick(t);
	if (!one_thread() || grow_refused || !events->n || events->data_pages >= RING_PAGES_MAX ||
	    pfs_regions_count() == recount_regions)
		return;
	uint64_t interval_ns = (uint64_t)(pfs_proc.cfg.scan_ms ? pfs_proc.cfg.scan_ms : PFS_SCAN_MS_DEFAULT) * 1000000u;
	if (pfs_now_ns() - recount_ns >= interval_ns)
		ring_recount(t);
}

/*
 * The program's first thread is about to start: a ring opened later would
 * not follow it (ring_grow), and a multi-threaded program is drained by the
 * scanner thread's passes, as far apart as they cost (fast.c): the largest
 * ring now.
 */
static void pevent_thread_coming(struct pfs_thread *t)
{
	if (!one_thread())
		return;
	int saved = errno;
	pfs_regions_lock();
	if (!t)
		t = pfs_thread_get();
	if (t)
		ring_grow(t, RING_PAGES_MAX);
	thread_came = 1;
	pfs_regions_unlock();
	errno = saved;
}

/* A fork: every page the child shares may fault here again, as a copy. */
static void pevent_fork_parent(struct pfs_thread *t)
{
	pfs_tracker_fast.fork_parent(t);
	ring_recount(t);
}

/*
 * A forked child: the parent's rings are not mapped here (MADV_DONTFORK)
 * and their descriptors are closed; the child opens events of its own,
 * then fast mode's child work notes what each region holds (the pages the
 * fork shares, whose first fault here is a copy).  Without events here the
 * child is fast mode's.
 */
static void pevent_fork_child(struct pfs_thread *t, pfs_announce_fn announce)
{
	for (unsigned i = 0; i < events->n; i++)
		events->r[i].base = NULL; /* not mapped in the child */
	pfs_pev_close(events);
	pfs_fbatch_reset_counts();
	memset(&batch, 0, sizeof(batch));
	again = (struct pfs_fbatch){.rec_flags = PFS_FAULTS_AGAIN};
	first_gen++; /* the parent's pages and threads */
	repeats = outside = lost_said = 0;
	full_said = 0;
	grow_refused = thread_came = 0;
	forked = 1;
	const char *why = "";
	int err = open_events(events, RING_PAGES_START, RING_PAGES_MIN, &why);
	if (err) {
		pfs_fast_feed(NULL);
		pfs_tracker = &pfs_tracker_fast;
		pfs_proc.mode = PFS_MODE_FAST;
		pfs_warn("fork: %s in process %d (%s); fast mode counts its faults", why, (int)pfs_proc.pid,
			 strerror(-err));
	}
	pfs_tracker_fast.fork_child(t, announce);
	/*
	 * Sized now to what the child shares: it may never call into the shim
	 * again (a loop rewriting objects its parent made: Python's dict
	 * stores), so nothing would drain its ring before its end, and each
	 * page it writes is a copy.  A child that execs at once pays for the
	 * larger ring (docs/design.md, "Ring size").
	 */
	recount_regions = UINT64_MAX;
	recount_ns = 0;
	if (!err)
		ring_recount(t);
}

static void pevent_counts(uint64_t *first, uint64_t *cow)
{
	uint64_t f1, c1, f2, c2;
	pfs_tracker_fast.counts(&f1, &c1);
	pfs_fbatch_counts(&f2, &c2);
	*first = f1 + f2;
	*cow = c1 + c2;
}

/* Fast mode's table with the operations above: filled in by pevent_init, before it is used. */
struct pfs_tracker pfs_tracker_pevent = {.name = "exact", .init = pevent_init};
