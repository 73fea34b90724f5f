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

#include "fbatch.h"
#include "heap.h"
#include "msg.h"
#include "pevent_ring.h"
#include "proc.h"
#include "regions.h"
#include "thread.h"
#include "tracker.h"

static struct pfs_pev_set events; /* under the regions lock once started */
static struct pfs_fbatch batch;	  /* under the regions lock */
static uint64_t page_size = 4096;
static uint64_t repeats, outside, lost_said;

/*
 * Ring size per CPU: a single-threaded program is drained only when it
 * calls the allocator (periodic.h), so a storm between two calls must fit:
 * 4 MiB holds 131,072 faults (512 MiB of 4 KiB pages).  Forked children
 * start smaller (a pool of them pins the memory at once); the kernel's
 * refusal halves it (perf_event_mlock_kb, ulimit -l).
 */
#define RING_PAGES_FIRST 1024u
#define RING_PAGES_CHILD 64u
#define RING_PAGES_MIN 8u

static int open_events(unsigned pages, const char **why)
{
	struct pfs_pev_opts o = {
		.pid = 0,
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_PAGE_FAULTS_MIN,
		.ip = pfs_proc.cfg.touch_site,
		.try_kernel = 1,
		.inherit_threads = 1,
		.data_pages = pages,
		.min_pages = RING_PAGES_MIN,
	};
	int err = pfs_pev_open(&events, &o, why);
	if (!err)
		pfs_pev_close_fds(&events); /* the mappings keep the events: no descriptor for the program to meet */
	return err;
}

static int pevent_start(const char **why);
static void pevent_heap_carved(struct pfs_thread *t, struct pfs_heap *h, uint64_t from, uint64_t to, uint64_t top,
			       uint32_t stack, int kind);
static void pevent_fork_child(struct pfs_thread *t, pfs_announce_fn announce);
static void pevent_counts(uint64_t *first, uint64_t *cow);

static int pevent_init(const char **why)
{
	struct pfs_tracker ops = pfs_tracker_fast;
	ops.name = "exact";
	ops.init = pevent_init;
	ops.start = pevent_start;
	ops.heap_carved = pevent_heap_carved;
	ops.fork_child = pevent_fork_child;
	ops.counts = pevent_counts;
	pfs_tracker_pevent = ops;
	page_size = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	int err = pfs_tracker_fast.init(why);
	if (err)
		return err;
	return open_events(RING_PAGES_FIRST, why);
}

/* The region holding addr (heaps only up to what was carved), or NULL.  Regions lock held. */
static struct region *region_of(uint64_t addr)
{
	for (uint64_t i = pfs_regions_from(addr); i < pfs_regions_count(); i++) {
		struct region *r = pfs_region_at(i);
		if (r->start > addr)
			break;
		if (addr < pfs_region_end(r))
			return r;
	}
	return NULL;
}

static void on_sample(const struct pfs_pev_sample *sm, void *arg)
{
	struct pfs_thread *t = arg;
	struct region *r = region_of(sm->addr);
	if (!r) { /* no hook's memory: a pass finds it by its mapping (fast.c), counted by kind */
		outside++;
		return;
	}
	uint64_t i = (sm->addr - r->start) / page_size;
	unsigned flags = 0;
	if (r->cow && pfs_bits_get(r->cow, i)) {
		pfs_bits_clear(r->cow, i, i + 1);
		r->cow_left--;
		flags = PFS_FEV_COW | PFS_FEV_WRITE;
	} else if (pfs_bits_get(&r->bits, i)) {
		repeats++;
		return;
	}
	pfs_bits_set_count(&r->bits, i, i + 1);
	long sys = -1;
	if (sm->ip && sm->user)
		flags |= PFS_FEV_SITE;
	pfs_fbatch_add(&batch, t, sm->addr, sm->tid, flags, sm->ip, sys, sm->time_ns);
}

/* The feed (pfs_fast_feed): every sample so far into the regions and the log.  Regions lock held. */
static void drain(struct pfs_thread *t)
{
	if (!t)
		t = pfs_thread_get();
	if (!t || !events.n)
		return;
	pfs_pev_drain(&events, on_sample, t);
	pfs_fbatch_flush(&batch, t);
	if (events.lost > lost_said) {
		if (!lost_said)
			pfs_warn("exact mode: the kernel lost %llu fault events of process %d (its ring buffer was full); "
				 "their first touches are counted from the page map, without time, thread or touch site",
				 (unsigned long long)(events.lost - lost_said), (int)pfs_proc.pid);
		lost_said = events.lost;
	}
}

static int pevent_start(const char **why)
{
	int err = pfs_tracker_fast.start(why);
	if (err)
		return err;
	pfs_fast_feed(drain);
	return 0;
}

/* Heaps: fast mode's owners for its page-map counts, and a CARVE record for the events' attribution. */
static void pevent_heap_carved(struct pfs_thread *t, struct pfs_heap *h, uint64_t from, uint64_t to, uint64_t top,
			       uint32_t stack, int kind)
{
	pfs_tracker_fast.heap_carved(t, h, from, to, top, stack, kind);
	if (to > from && t)
		pfs_rec_carve(&t->w, from, to, stack, kind);
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
	for (unsigned i = 0; i < events.n; i++)
		events.r[i].base = NULL; /* not mapped in the child */
	pfs_pev_close(&events);
	pfs_fbatch_reset_counts();
	memset(&batch, 0, sizeof(batch));
	repeats = outside = lost_said = 0;
	const char *why = "";
	int err = open_events(RING_PAGES_CHILD, &why);
	if (err) {
		pfs_fast_feed(NULL);
		pfs_tracker = &pfs_tracker_fast;
		pfs_proc.mode = PFS_MODE_FAST;
		pfs_warn("fork: %s in process %d (%s); fast mode counts its faults", why, (int)pfs_proc.pid,
			 strerror(-err));
	}
	pfs_tracker_fast.fork_child(t, announce);
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
