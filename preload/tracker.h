/*
 * The ways of observing page faults, behind one interface chosen once at
 * start (mimalloc's prim layer, heaptrack's track API):
 *   fast  page-map scans for first touches, asynchronous write-protect for
 *         copy-on-write after fork (regions.c);
 *   exact every fault seen as the kernel's own fault event (pevent.c,
 *         pevent_ring.c: fast mode's regions fed by perf_event_open samples)
 *         where the kernel allows it, else
 *   uffd  every fault trapped with userfaultfd (exact.c, uffd.c,
 *         uffd_handler.c);
 *   off   nothing observed (tracker.c).
 * The hooks' tracking (track.c), the heaps (heap.c), policies and the
 * process core (core.c) call these operations and never name a mode; a new
 * way of observing is one new file with one table.
 */
#ifndef PFS_TRACKER_H
#define PFS_TRACKER_H

#include <stdint.h>

/* What memory the tracker is given is (add's `mem`, a region's). */
#define PFS_MEM_COWABLE 1u	/* private anonymous: a write after a fork copies it */
#define PFS_MEM_READ_AROUND 2u	/* a read-only mapping of a file or of shared memory: a read fault maps its cached neighbours too */
#define PFS_MEM_EVENT_FAULTS 4u	/* a file or shared mapping whose every minor fault is a fault event: pages found alone took none */
#define PFS_MEM_TOUCHED 8u	/* its pages held when added were first touched already, inside the call that made it (realloc's copy) */

struct pfs_thread;
struct pfs_heap;

/*
 * Writes the ALLOC record of memory a forked child inherited (the tracker
 * hands each of its live ranges to it after a fork) under *seq, the seq of
 * the parent's record of it; 0 (none): a new one, stored in *seq.  The
 * parent's seq stays the range's own: its structure, a page the parent
 * shares, is not written for it (a copy in every forked child), and seqs
 * after the fork are new in both processes.
 */
typedef void (*pfs_announce_fn)(struct pfs_thread *t, uint64_t *seq, int kind, uint32_t stack, uint64_t addr,
				uint64_t len);

struct pfs_mapping;

struct pfs_tracker {
	const char *name;
	/* Can it run here: 0, or -errno with *why saying what is missing (before any thread state). */
	int (*init)(const char **why);
	/* Starts it once the process's state and its log exist (PROC_START not written yet): 0 or -errno, *why. */
	int (*start)(const char **why);

	/*
	 * Memory with pages of its own (a mapping, a block with a mapping of
	 * its own, growth of the break): [addr, addr + len), page-rounded
	 * outwards.  `mem`: what it is (PFS_MEM_*).
	 */
	void (*add)(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack, int kind,
		    unsigned mem);
	/*
	 * After start, once the memory held then has been handed over (add for
	 * each range; a tracker taking over from another hands over its ranges
	 * the same way): the tracker may take all their baselines in one walk.
	 * `touched`: the pages held then were first touched by this program
	 * image before the shim started (an exec'd image's start: the loader's,
	 * libc's, the constructors' of libraries whose allocator the hooks do
	 * not see), counted as first touches now; 0: counted already (a tracker
	 * taking over from another).
	 */
	void (*adopted)(struct pfs_thread *t, int touched);
	/*
	 * At start, the walk of the maps that hands memory over (add) meets
	 * every other mapping too: `m`, after `prev`, for a tracker that keeps
	 * the mappings it leaves alone and would read the maps again to learn
	 * them.  NULL: not wanted.
	 */
	void (*seen)(const struct pfs_mapping *m, const struct pfs_mapping *prev);
	/* The allocation starting in the page of `addr` goes away. */
	void (*free_at)(struct pfs_thread *t, uint64_t addr);
	/* [addr, addr + len) is unmapped; what stays mapped stays tracked. */
	void (*unmap)(struct pfs_thread *t, uint64_t addr, uint64_t len);
	/* After a successful mremap: the range at `old` lives at `new_addr` now. */
	void (*remap)(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len);
	/* [addr, addr + len) is about to lose or move pages (madvise, mremap): account for it as it is. */
	void (*sync)(struct pfs_thread *t, uint64_t addr, uint64_t len, int reason);
	/* madvise(advice) on [addr, addr + len) is about to run / succeeded (the program's or a policy's). */
	void (*advising)(struct pfs_thread *t, uint64_t addr, uint64_t len, int advice);
	void (*advised)(struct pfs_thread *t, uint64_t addr, uint64_t len, int advice);
	/*
	 * The program registers [addr, addr + len) with a userfaultfd of its
	 * own (`fd`): the tracker stops observing it there (a range the shim
	 * registered would make the program's registration fail with EBUSY).
	 */
	void (*release)(struct pfs_thread *t, uint64_t addr, uint64_t len, int fd);
	/* The program called into the shim (an allocation, a thread start): periodic work. */
	void (*tick)(struct pfs_thread *t);
	/* The program is about to start a thread (it does not exist yet): work only its creator can do. */
	void (*thread_coming)(struct pfs_thread *t);

	/*
	 * Heaps (heap.c): a block reached pages [from, to) of heap h for the
	 * first time, for site (stack, kind); `top` is the heap's end now.  The
	 * tracker may lower h->limit (the carving window's end).
	 */
	void (*heap_carved)(struct pfs_thread *t, struct pfs_heap *h, uint64_t from, uint64_t to, uint64_t top,
			    uint32_t stack, int kind);
	/*
	 * Another allocator's extent h (heap.h), mapped and added already as
	 * [h->start, h->start + len): its pages are charged to their carvers
	 * (heap_carved) from now on, the mapping's site keeping the pages no
	 * block reaches; h->priv is the tracker's.  0, or -1: it stays whole.
	 */
	int (*extent)(struct pfs_heap *h, uint64_t len);
	/* A policy made heap pages [start, end) present before the block returned. */
	void (*heap_prefaulted)(struct pfs_heap *h, uint64_t start, uint64_t end);
	/*
	 * Heap h gave pages [start, end) back (glibc trimmed it from inside
	 * free: no hook saw the brk or madvise): touching them again is a first
	 * touch again, carved anew.
	 */
	void (*heap_released)(struct pfs_heap *h, uint64_t start, uint64_t end);

	/* fork: the tracker's lock across it; then each side's own work. */
	void (*lock)(void);
	void (*unlock)(void);
	void (*fork_parent)(struct pfs_thread *t);
	void (*fork_child)(struct pfs_thread *t, pfs_announce_fn announce);
	/* The process exits or execs: everything pending is written. */
	void (*end)(struct pfs_thread *t);
	/* First-touch and copy-on-write faults counted in this process so far. */
	void (*counts)(uint64_t *first_touch, uint64_t *cow);
};

/* Operations that do nothing, for trackers that have nothing to do there. */
void pfs_nop_range(struct pfs_thread *t, uint64_t addr, uint64_t len, int what);
void pfs_nop_thread(struct pfs_thread *t);
void pfs_nop_adopted(struct pfs_thread *t, int touched);
void pfs_nop_heap_pages(struct pfs_heap *h, uint64_t start, uint64_t end);
int pfs_nop_extent(struct pfs_heap *h, uint64_t len);

/* The one in force; the off tracker until pfs_tracker_choose. */
extern const struct pfs_tracker *pfs_tracker;

extern const struct pfs_tracker pfs_tracker_off, pfs_tracker_fast, pfs_tracker_exact;
/* Exact mode on fault events: fast mode's table with operations of its own, filled in by its init. */
extern struct pfs_tracker pfs_tracker_pevent;

/*
 * Picks the tracker for pfs_proc.cfg.mode (exact: fault events, else
 * userfaultfd; uffd: userfaultfd; else fast, else off; a fallback said
 * once by the run's first process) and sets pfs_proc.mode.
 */
void pfs_tracker_choose(void);
/* Starts the chosen tracker; if it cannot start, says why and falls back the same way. */
void pfs_tracker_start(void);

#endif
