/*
 * The tracker in force (tracker.h), chosen once at start, and the off
 * tracker, which observes nothing.
 *
 * The mode chain: PFSHIM_MODE unset means fast where the page map can be
 * read (PAGEMAP_SCAN on Linux 6.7 and newer, else its entries, slower),
 * else off.  exact takes the kernel's fault events where perf_event_open
 * allows them (kernel.perf_event_paranoid 2 or less), else a full
 * userfaultfd; uffd only the latter; without one they fall back to fast
 * (then off).  A fallback is said once, by the run's first process.
 */
#include <string.h>

#include "msg.h"
#include "proc.h"
#include "tracker.h"

static int off_init(const char **why)
{
	(void)why;
	return 0;
}

void pfs_nop_range(struct pfs_thread *t, uint64_t addr, uint64_t len, int what)
{
	(void)t, (void)addr, (void)len, (void)what;
}

static void off_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t seq, uint32_t stack, int kind,
		    unsigned mem)
{
	(void)t, (void)addr, (void)len, (void)seq, (void)stack, (void)kind, (void)mem;
}

static void off_at(struct pfs_thread *t, uint64_t addr)
{
	(void)t, (void)addr;
}

static void off_unmap(struct pfs_thread *t, uint64_t addr, uint64_t len)
{
	(void)t, (void)addr, (void)len;
}

static void off_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len)
{
	(void)t, (void)old, (void)old_len, (void)new_addr, (void)new_len;
}

void pfs_nop_adopted(struct pfs_thread *t, int touched)
{
	(void)t;
	(void)touched;
}

void pfs_nop_thread(struct pfs_thread *t)
{
	(void)t;
}

static void off_carved(struct pfs_thread *t, struct pfs_heap *h, uint64_t from, uint64_t to, uint64_t top,
		       uint32_t stack, int kind)
{
	(void)t, (void)h, (void)from, (void)to, (void)top, (void)stack, (void)kind;
}

int pfs_nop_extent(struct pfs_heap *h, uint64_t len)
{
	(void)h, (void)len;
	return -1;
}

void pfs_nop_heap_pages(struct pfs_heap *h, uint64_t start, uint64_t end)
{
	(void)h, (void)start, (void)end;
}

static void off_void(void)
{
}

static void off_child(struct pfs_thread *t, pfs_announce_fn announce)
{
	(void)t, (void)announce;
}

static void off_counts(uint64_t *first, uint64_t *cow)
{
	*first = *cow = 0;
}

const struct pfs_tracker pfs_tracker_off = {
	.name = "off",
	.init = off_init,
	.start = off_init,
	.add = off_add,
	.adopted = pfs_nop_adopted,
	.free_at = off_at,
	.unmap = off_unmap,
	.remap = off_remap,
	.sync = pfs_nop_range,
	.advising = pfs_nop_range,
	.advised = pfs_nop_range,
	.release = pfs_nop_range,
	.tick = pfs_nop_thread,
	.thread_coming = pfs_nop_thread,
	.heap_carved = off_carved,
	.extent = pfs_nop_extent,
	.heap_prefaulted = pfs_nop_heap_pages,
	.heap_released = pfs_nop_heap_pages,
	.lock = off_void,
	.unlock = off_void,
	.fork_parent = pfs_nop_thread,
	.fork_child = off_child,
	.end = pfs_nop_thread,
	.counts = off_counts,
};

const struct pfs_tracker *pfs_tracker = &pfs_tracker_off;

static void use(const struct pfs_tracker *t, int mode)
{
	pfs_tracker = t;
	pfs_proc.mode = mode;
}

void pfs_tracker_choose(void)
{
	int want = pfs_proc.cfg.mode;
	int first = pfs_proc.cfg.run_pid == 0;
	const char *why = "";
	use(&pfs_tracker_off, PFS_MODE_OFF);
	if (want == PFS_MODE_OFF)
		return;
	if (want == PFS_MODE_EXACT || want == PFS_MODE_UFFD) {
		const char *no_events = NULL;
		int events_err = 0;
		if (want == PFS_MODE_EXACT) {
			events_err = pfs_tracker_pevent.init(&no_events);
			if (!events_err) {
				use(&pfs_tracker_pevent, PFS_MODE_EXACT);
				return;
			}
		}
		int err = pfs_tracker_exact.init(&why);
		if (!err)
			use(&pfs_tracker_exact, PFS_MODE_EXACT);
		/* one line for the whole fallback */
		if (first && !err && no_events)
			pfs_warn("PFSHIM_MODE=exact: no fault events here: %s (%s); trapping faults with userfaultfd instead",
				 no_events, strerror(-events_err));
		else if (first && err && no_events)
			pfs_warn("PFSHIM_MODE=exact: no fault events here: %s (%s), and %s (%s); running in fast mode",
				 no_events, strerror(-events_err), why, strerror(-err));
		else if (first && err)
			pfs_warn("PFSHIM_MODE=uffd: %s (%s); running in fast mode", why, strerror(-err));
		if (!err)
			return;
	}
	int err = pfs_tracker_fast.init(&why);
	if (!err) {
		use(&pfs_tracker_fast, PFS_MODE_FAST);
		return;
	}
	if (first)
		pfs_warn("%s %s (%s); running in mode off", want == PFS_MODE_FAST ? "PFSHIM_MODE=fast" : "fast mode",
			 why, strerror(-err));
}

void pfs_tracker_start(void)
{
	const char *why = "";
	int err = pfs_tracker->start(&why);
	if (!err)
		return;
	pfs_warn("PFSHIM_MODE=%s: %s (%s); running in fast mode", pfs_tracker->name, why, strerror(-err));
	pfs_proc.cfg.mode = PFS_MODE_FAST;
	pfs_tracker_choose();
	if (pfs_tracker->start(&why))
		use(&pfs_tracker_off, PFS_MODE_OFF);
}
