/*
 * Call sites: stacks captured with libunwind, deduplicated into ids (one
 * STACK record each), and the per-thread cache that keeps small allocations
 * cheap.
 *
 * A small allocation is charged to its call site without unwinding: the key
 * is (return address, stack pointer at the hook, kind).  The same call
 * instruction reached through another path almost always arrives with
 * another stack pointer, so the key separates the paths the full stack
 * would.  Every PFS_VERIFY_EVERY hits the key is unwound again; a key found
 * with two different stacks is qualified by its caller's first callers from
 * then on (a short unwind; see "Keys that two stacks share"), so the
 * counts stay exact.
 */
#include <errno.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "forkshare.h"
#include "kcompat.h"
#include "modules.h"
#include "sites.h"

#include <uthash.h>

struct stack_ent {
	UT_hash_handle hh;
	uint32_t id;
	uint32_t n;
	uint16_t flags;
	uint64_t frames[];
};

struct pfs_slotmap {
	UT_hash_handle hh;
	uint64_t key; /* stack << 8 | kind */
	struct pfs_counter_slot *slot;
};

/* Every thread's COUNTERS records, for the exit summary. */
struct counters_ref {
	struct pfs_counter_slot *slots;
	struct counters_ref *next;
};

static pfs_spin_t stacks_lock = PFS_SPIN_INIT;
static struct stack_ent *stacks;
static uint32_t stacks_next = 1;
static pfs_spin_t counters_lock = PFS_SPIN_INIT;
static struct counters_ref *counters;

/* The size of a table of 1 << bits entries. */
static size_t cache_bytes(uint32_t bits)
{
	return ((size_t)1 << bits) * sizeof(struct pfs_cache_ent);
}

/* Stacks by id, for policies that look at a stack's frames: two levels, grown from the arena. */
#define BY_ID_CHUNK 1024u
#define BY_ID_CHUNKS 4096u
static struct stack_ent **by_id[BY_ID_CHUNKS];

static void by_id_set(struct stack_ent *s)
{
	uint32_t c = s->id / BY_ID_CHUNK;
	if (c >= BY_ID_CHUNKS)
		return;
	if (s->id == 1) /* a start's first stack: the table's first page made present by one call, not a fault (a large table, .lbss) */
		pfs_prefault(by_id, sizeof(by_id[0]), MADV_POPULATE_WRITE);
	/* Writers hold stacks_lock; readers take no lock, so chunks and entries are published with release. */
	if (!by_id[c]) {
		struct stack_ent **chunk = pfs_arena_alloc(BY_ID_CHUNK * sizeof(*chunk));
		if (!chunk)
			return;
		__atomic_store_n(&by_id[c], chunk, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&by_id[c][s->id % BY_ID_CHUNK], s, __ATOMIC_RELEASE);
}

static struct stack_ent *by_id_get(uint32_t id)
{
	uint32_t c = id / BY_ID_CHUNK;
	struct stack_ent **chunk = c < BY_ID_CHUNKS ? __atomic_load_n(&by_id[c], __ATOMIC_ACQUIRE) : NULL;
	return chunk ? __atomic_load_n(&chunk[id % BY_ID_CHUNK], __ATOMIC_ACQUIRE) : NULL;
}

int pfs_stacks_frames(uint32_t id, const uint64_t **frames)
{
	struct stack_ent *s = by_id_get(id);
	if (!s)
		return -1;
	*frames = s->frames;
	return (int)s->n;
}

#define PFS_STEP_UNWINDS 256u
static __thread unsigned thread_unwinds __attribute__((tls_model("initial-exec")));

/*
 * Signals while unwinding.  libunwind (built with --enable-block-signals,
 * its default) blocks every signal around each lock it takes and each
 * dl_iterate_phdr: two rt_sigprocmask calls each, 12 for a return address
 * it has not seen, about 1 µs each on our machines (38% of a program with
 * 10,000 call sites).  An unwind that will take those paths (a key not
 * seen before, or a thread's first unwinds, which step) blocks the signals
 * once itself; meanwhile libunwind's own calls (sigprocmask is interposed,
 * hook_signal.c) are answered from a mask kept here, without a system
 * call.  No signal handler runs on the thread in that window, so every
 * call there is libunwind's, and it sees the masks it would have seen.
 */
__thread int pfs_unwind_masked __attribute__((tls_model("initial-exec")));
static __thread uint64_t mask_saved __attribute__((tls_model("initial-exec")));
static __thread uint64_t mask_seen __attribute__((tls_model("initial-exec")));
static __thread int mask_real __attribute__((tls_model("initial-exec")));

/*
 * Until the program installs a signal handler (sigaction or the signal
 * family: hook_signal.c), no signal can run code of its own
 * on a thread that unwinds, so none can take libunwind's locks there: the
 * kernel's mask is left as it is (two system calls fewer per new call site;
 * 42 of `echo`'s 143 extra ones) and libunwind's calls are still answered
 * here.  A signal's default action is the same either way.  The shim's own
 * handlers (core.c) do nothing while the shim is busy.  Exec resets every
 * handler; a forked child inherits them and this flag.  A handler installed
 * by a raw rt_sigaction system call is not seen.
 */
static int program_handlers;

void pfs_unwind_note_handler(void)
{
	if (!__atomic_load_n(&program_handlers, __ATOMIC_RELAXED))
		__atomic_store_n(&program_handlers, 1, __ATOMIC_RELEASE);
}

static int mask_begin(void)
{
	if (!__atomic_load_n(&program_handlers, __ATOMIC_ACQUIRE)) {
		mask_real = 0;
		mask_saved = mask_seen = 0;
		pfs_unwind_masked = 1;
		return 1;
	}
	mask_real = 1;
	sigset_t all, old;
	sigfillset(&all);
	/* glibc's own signals (thread cancellation, setxid) stay open, as under libunwind's masks. */
	if (pthread_sigmask(SIG_BLOCK, &all, &old) != 0)
		return 0;
	memcpy(&mask_saved, &old, sizeof(mask_saved));
	mask_seen = mask_saved;
	pfs_unwind_masked = 1;
	return 1;
}

static void mask_end(void)
{
	sigset_t old;
	pfs_unwind_masked = 0;
	if (!mask_real)
		return;
	sigemptyset(&old);
	memcpy(&old, &mask_saved, sizeof(mask_saved));
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int pfs_unwind_sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	uint64_t m = 0;
	if (set)
		memcpy(&m, set, sizeof(m));
	if (set && how != SIG_BLOCK && how != SIG_UNBLOCK && how != SIG_SETMASK) {
		errno = EINVAL;
		return -1;
	}
	if (old) {
		sigemptyset(old);
		memcpy(old, &mask_seen, sizeof(mask_seen));
	}
	if (set)
		mask_seen = how == SIG_BLOCK ? mask_seen | m : how == SIG_UNBLOCK ? mask_seen & ~m : m;
	return 0;
}

/* The thread's next capture steps frame by frame (the paths that mask signals for each frame). */
static int unwind_steps(void)
{
	return __tsan_acquire || thread_unwinds < PFS_STEP_UNWINDS;
}

/* The return addresses of the calling thread's stack, the shim's own frames first: at most max. */
static int unwind_raw(void **raw, int max)
{
	int n = 0;
	/*
	 * unw_backtrace's first call in a thread builds a trace cache of 256
	 * KiB (zeroed, 64 fresh pages): most of a short process's unwinding
	 * cost.  A thread's first PFS_STEP_UNWINDS unwinds step frame by frame
	 * instead (the same frames, no cache); a thread that unwinds more
	 * gets the cache.
	 */
	if (PFS_LIKELY(!__tsan_acquire) && ++thread_unwinds > PFS_STEP_UNWINDS)
		return unw_backtrace(raw, max);
	/*
	 * Under ThreadSanitizer, always: unw_backtrace's trace cache has a
	 * thread-exit destructor that locks a mutex after TSan has finished
	 * the thread (a crash, measured).
	 */
	unw_context_t ctx;
	unw_cursor_t cur;
	if (unw_getcontext(&ctx) == 0 && unw_init_local(&cur, &ctx) == 0) {
		do {
			unw_word_t ip;
			if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0)
				break;
			raw[n++] = (void *)(uintptr_t)ip;
		} while (n < max && unw_step(&cur) > 0);
	}
	return n;
}

/* The shim's own frames at the start of raw[0, n): the hook and what it called. */
static int self_frames(void *const *raw, int n)
{
	int i = 0;
	while (i < n && pfs_addr_in_self((uintptr_t)raw[i]))
		i++;
	return i;
}

int pfs_unwind_capture(uint64_t *frames, unsigned max, int *truncated)
{
	void *raw[PFS_MAX_FRAMES + 16];
	int n = unwind_raw(raw, (int)PFS_ARRAY_SIZE(raw)), i = self_frames(raw, n), k = 0;
	for (; i < n && (unsigned)k < max; i++)
		frames[k++] = (uint64_t)(uintptr_t)raw[i];
	*truncated = i < n || n == (int)PFS_ARRAY_SIZE(raw);
	return k;
}

static void emit_stack(struct pfs_thread *t, const struct stack_ent *s)
{
	uint32_t size = (uint32_t)(sizeof(struct pfs_rec_stack) + s->n * sizeof(uint64_t));
	struct pfs_rec_stack *r = t ? pfs_rec_begin(&t->w, size) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->id = s->id;
	r->nframes = s->n;
	memcpy(r->frames, s->frames, s->n * sizeof(uint64_t));
	pfs_rec_end(r, PFS_REC_STACK, s->flags, size);
}

uint32_t pfs_stacks_intern(struct pfs_thread *t, const uint64_t *frames, uint32_t n, uint16_t flags)
{
	struct stack_ent *s;
	size_t klen = n * sizeof(uint64_t);
	pfs_spin_lock(&stacks_lock);
	HASH_FIND(hh, stacks, frames, klen, s);
	if (s) {
		pfs_spin_unlock(&stacks_lock);
		return s->id;
	}
	s = pfs_arena_alloc(sizeof(*s) + klen);
	if (!s) {
		pfs_spin_unlock(&stacks_lock);
		return 0;
	}
	s->id = stacks_next++;
	s->n = n;
	s->flags = flags;
	if (klen)
		memcpy(s->frames, frames, klen);
	HASH_ADD_KEYPTR(hh, stacks, s->frames, klen, s);
	by_id_set(s);
	emit_stack(t, s); /* under the lock: the STACK record precedes every use of the id */
	pfs_spin_unlock(&stacks_lock);
	return s->id;
}

uint32_t pfs_stacks_count(void)
{
	return HASH_COUNT(stacks);
}

/*
 * The inherited stacks (ids below pfs_stacks_lazy_below) not yet written in
 * this process's log: a bit each, set when written.  Stacks interned here
 * are written as they are interned.
 */
uint32_t pfs_stacks_lazy_below;
static uint64_t *lazy_written;

void pfs_sites_rewrite(struct pfs_thread *t)
{
	struct stack_ent *s, *tmp;
	pfs_python_rewrite(t); /* the functions Python frames name, before the stacks */
	pfs_spin_lock(&stacks_lock);
	uint32_t below = stacks_next;
	uint64_t *bits = pfs_arena_alloc((below + 63) / 64 * sizeof(uint64_t));
	if (bits) {
		memset(bits, 0, (below + 63) / 64 * sizeof(uint64_t));
		lazy_written = bits;
		__atomic_store_n(&pfs_stacks_lazy_below, below, __ATOMIC_RELEASE);
	} else { /* no memory for the bits: every stack now, as the log must name them */
		__atomic_store_n(&pfs_stacks_lazy_below, 0, __ATOMIC_RELEASE);
		HASH_ITER(hh, stacks, s, tmp)
		emit_stack(t, s);
	}
	pfs_spin_unlock(&stacks_lock);
}

void pfs_stack_used_slow(struct pfs_thread *t, uint32_t id)
{
	uint64_t bit = 1ull << (id % 64);
	if (!id || !t || (__atomic_fetch_or(&lazy_written[id / 64], bit, __ATOMIC_ACQ_REL) & bit))
		return;
	struct stack_ent *s = by_id_get(id);
	if (s)
		emit_stack(t, s);
}

/*
 * fork and libunwind.  libunwind takes internal mutexes while it steps; a
 * thread that is unwinding when another thread forks leaves them locked in
 * the child, whose first unwind then hangs for ever.  So the fork prepare
 * handler waits until no thread is unwinding.  The reverse wait would be
 * unsafe (an unwinder may hold the loader's lock that a dlopen-ing thread,
 * itself in a hook, needs), so while a fork is pending new unwinds do not
 * start: their allocation is charged to the "unknown" stack (no frames) and
 * not cached.  A fork is short; counts stay exact, attribution of the few
 * allocations in that window is lost.
 */
static int unwind_active;
static int fork_pending;
static __thread int in_unwind __attribute__((tls_model("initial-exec")));
static uint32_t unknown_stack;

/*
 * libunwind's first unwind in a process clears its address space's caches
 * (about 30 KiB of its .bss, a memset) page by page: 8 page faults of
 * every process that allocates, 12-25 us each on a virtual machine (a
 * tenth of the shim's cost at a start).  Its .bss is made present before
 * that in one call instead (MADV_POPULATE_WRITE, Linux 5.14: about half a
 * fault's cost per page; where the call fails, the faults are taken as
 * before).  A forked child inherits libunwind set up, and this with it.
 */
static int unwinder_warm;

struct warm {
	uintptr_t fn;	/* an address in libunwind's code */
	uintptr_t page;
};

static int warm_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	const struct warm *w = arg;
	uint64_t start, end;
	pfs_module_range(info, &start, &end);
	if (w->fn < start || w->fn >= end)
		return 0;
	uintptr_t page = w->page;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
			continue;
		uintptr_t from = (info->dlpi_addr + ph->p_vaddr + ph->p_filesz + page - 1) & ~(page - 1);
		uintptr_t to = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
		if (to > from && to - from <= 64 * page) /* its .bss, as measured; a larger one is left alone */
			pfs_prefault((void *)from, to - from, MADV_POPULATE_WRITE); /* not the hook */
	}
	return 1;
}

static void unwinder_warm_up(void)
{
	unwinder_warm = 1;
	int saved = errno;
	struct warm w = {(uintptr_t)&unw_init_local, (uintptr_t)sysconf(_SC_PAGESIZE)};
	dl_iterate_phdr(warm_cb, &w);
	errno = saved;
}

static int unwind_enter(void)
{
	if (PFS_UNLIKELY(!unwinder_warm))
		unwinder_warm_up();
	if (__atomic_load_n(&fork_pending, __ATOMIC_SEQ_CST))
		return 0;
	__atomic_add_fetch(&unwind_active, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&fork_pending, __ATOMIC_SEQ_CST)) {
		__atomic_sub_fetch(&unwind_active, 1, __ATOMIC_SEQ_CST);
		return 0;
	}
	in_unwind = 1;
	return 1;
}

static void unwind_leave(void)
{
	in_unwind = 0;
	__atomic_sub_fetch(&unwind_active, 1, __ATOMIC_SEQ_CST);
}

void pfs_unwind_gate_close(void)
{
	__atomic_store_n(&fork_pending, 1, __ATOMIC_SEQ_CST);
	/* A fork from a signal handler that interrupted this thread's own unwind must not wait for itself. */
	int self = in_unwind;
	while (__atomic_load_n(&unwind_active, __ATOMIC_SEQ_CST) > self)
		sched_yield();
}

void pfs_unwind_gate_open(void)
{
	__atomic_store_n(&fork_pending, 0, __ATOMIC_SEQ_CST);
}

/* Not inside libunwind at the fork (first of the fork locks), then the tables. */
void pfs_sites_fork_prepare(void)
{
	pfs_forkshare_prepare();
	pfs_unwind_gate_close();
	pfs_spin_lock(&stacks_lock);
	pfs_spin_lock(&counters_lock);
	pfs_python_lock();
}

void pfs_sites_fork_parent(void)
{
	pfs_python_unlock();
	pfs_spin_unlock(&counters_lock);
	pfs_spin_unlock(&stacks_lock);
	pfs_unwind_gate_open();
}

/*
 * Zeroes p's n bytes (whole words), writing only the words that are not zero
 * already: a forked child shares these pages with its parent, and a write
 * copies one (a page fault in every fork).
 */
static void zero_quietly(void *p, size_t n)
{
	uint64_t *w = p;
	for (size_t i = 0; i < n / sizeof(*w); i++)
		if (w[i])
			w[i] = 0;
}

/*
 * The parent's COUNTERS records are in the parent's log: every thread's
 * slots start afresh, and its cache on the built-in table.  A grown table
 * is not cleared: clearing wrote every page of it, copies the kernel made
 * in each child before the shim could count them (32 per worker of
 * Python's fork pool).  The forking thread's keys are kept, without their
 * counters: in the built-in table each slot emptied where set (a write
 * copies a page, so nothing else is written there); a grown table stays
 * the child's to read (t->inherited), never written, so that a key the
 * parent knew is not unwound again (a shell's child, between its fork and
 * its exec).  Other threads' grown tables are given back.
 * Called after pfs_arena_child_reset.
 */
void pfs_sites_fork_child(void)
{
	stacks_lock = (pfs_spin_t)PFS_SPIN_INIT;
	counters_lock = (pfs_spin_t)PFS_SPIN_INIT;
	pfs_python_child();
	counters = NULL;
	unwind_active = in_unwind;
	fork_pending = 0;
	for (struct pfs_thread *t = pfs_thread_all(); t; t = t->next_all) {
		int mine = t == pfs_tls_thread;
		if (!mine)
			t->inherited = NULL;
		if (t->cache != t->cache0) {
			if (mine) {
				t->inherited = t->cache;
				t->inherited_shift = t->cache_shift;
			} else {
				pfs_pool_free(t->cache, cache_bytes(64 - t->cache_shift));
			}
			t->cache = t->cache0;
			t->cache_shift = 64 - PFS_CACHE_BITS;
			zero_quietly(t->cache, cache_bytes(64 - t->cache_shift)); /* cleared at its growth already */
			t->cache_used = 0;
		} else if (mine) {
			for (uint32_t i = 0; i < PFS_CACHE_SIZE; i++)
				if (!t->cache[i].depth && t->cache[i].slot)
					t->cache[i].slot = NULL;
		} else {
			memset(t->cache, 0, cache_bytes(64 - t->cache_shift));
			t->cache_used = 0;
		}
		t->slots = NULL; /* entries stay in the arena: they pointed into another log */
		t->free_slots = NULL;
		t->free_slots_left = 0;
	}
}

/* The stack that charges allocations whose stack could not be taken; interned at start. */
uint32_t pfs_stacks_unknown(struct pfs_thread *t)
{
	if (!unknown_stack)
		unknown_stack = pfs_stacks_intern(t, NULL, 0, PFS_STACK_UNKNOWN);
	return unknown_stack;
}

uint32_t pfs_site_python(struct pfs_thread *t)
{
	uint64_t frames[PFS_MAX_FRAMES_PYTHON];
	uint16_t flags = 0;
	int saved = errno, n = -1;
	if (unwind_enter()) {
		pfs_modules_sync(0);
		n = pfs_python_capture(t, frames, PFS_MAX_FRAMES_PYTHON, &flags);
		unwind_leave();
	}
	errno = saved;
	return n < 0 ? 0 : pfs_stacks_intern(t, frames, (uint32_t)n, flags);
}

/*
 * The stack of the call being made.  fresh: the key was not in the table
 * (its return address is likely new to libunwind too); `key`: such a key,
 * whose frames may come from a sibling forked child (forkshare.c), and go
 * there when unwound.
 */
struct share_key {
	uint64_t ret, sp;
	int kind;
};
static int callers_ra_offs(uintptr_t ret, uintptr_t sp, const uint64_t *frames, uint32_t *off, unsigned n);

static uint32_t unwind_site(struct pfs_thread *t, int fresh, const struct share_key *key)
{
	uint64_t frames[PFS_MAX_FRAMES];
	int truncated;
	if (!unwind_enter())
		return unknown_stack;
	pfs_modules_sync(0); /* a new module must be logged before a stack that points into it */
	uint32_t shared_n;
	uint16_t shared_flags;
	if (key && pfs_forkshare_find(key->ret, key->sp, key->kind, frames, &shared_n, &shared_flags)) {
		unwind_leave();
		return pfs_stacks_intern(t, frames, shared_n, shared_flags);
	}
	int masked = (fresh || unwind_steps()) && mask_begin();
	int n = pfs_unwind_capture(frames, PFS_MAX_FRAMES, &truncated);
	if (masked)
		mask_end();
	unwind_leave();
	uint16_t flags = truncated ? PFS_STACK_TRUNCATED : 0;
	uint32_t off[PFS_MAX_FRAMES];
	if (key && n > 1 && !truncated && pfs_forkshare_wanted() &&
	    callers_ra_offs(key->ret, key->sp, frames, off, (unsigned)n))
		pfs_forkshare_add(key->ret, key->sp, key->kind, off, frames, (uint32_t)n, flags);
	return pfs_stacks_intern(t, frames, (uint32_t)n, flags);
}

/*
 * Keys that two stacks share.  A wrapper (xmalloc) reached from several
 * callers at the same stack depth gives one key to several stacks: cc1
 * makes 1.2 million such calls, and unwinding each in full was most of
 * the shim's cost there.  Such a key gets a depth d: a call with it takes
 * the return addresses of the caller's first d callers only (read from
 * the stack where a first unwind found them, or a short unwind), and the
 * key qualified by them (hashed with the stack pointer)
 * has an entry of its own in the table (kind | PFS_QUALIFIED), unwound in
 * full on first sight and every PFS_VERIFY_EVERY hits as any key.  A
 * qualified key found with two stacks deepens d; past PFS_QUALIFY_MAX
 * every call with the key is unwound in full.
 */
#define PFS_QUALIFY_MAX 8u
#define PFS_DEPTH_FULL 255u

/*
 * Where a call at sp finds the return address of its caller's level-th
 * caller (1: the caller's caller), as an offset from sp (the hook's frame:
 * its return address, ret, is at sp + 8, and the caller's stack pointer
 * after the call is sp + 16): the save location libunwind reads it from,
 * found once per shared key (and per qualified key that leads deeper) by
 * stepping.  A frame's size at a given instruction is fixed (a function
 * that allocates on its stack, or realigns it, is the exception: its calls
 * are told apart by the check every PFS_VERIFY_EVERY hits like any key's),
 * so the next calls with the key read that word instead of unwinding
 * (pfs_qualify_caller, qualify_read): cc1's shared keys are 94% of depth 1
 * (xmalloc's callers), 1.2 million calls.  PFS_RA_UNKNOWN: not found (a
 * frame libunwind cannot step, a location too far); 0: not taken now.
 */
#define PFS_RA_OFF_MAX 2048u
/* Deeper callers' words lie further up: each was read from this thread's stack, at this sp, once. */
#define PFS_RA_OFF_DEEP_MAX 16384u
/* The cursor stepped to the frame of the call at (ret, sp): its ip ret, its caller's sp just past the return address. */
static int step_to_call(unw_cursor_t *cur, uintptr_t ret, uintptr_t sp)
{
	for (int i = 0; i < 16; i++) {
		unw_word_t ip, fsp;
		if (unw_get_reg(cur, UNW_REG_IP, &ip) < 0 || unw_get_reg(cur, UNW_REG_SP, &fsp) < 0)
			return 0;
		if (ip == ret)
			return fsp == sp + 2 * sizeof(void *);
		if (unw_step(cur) <= 0)
			return 0;
	}
	return 0;
}

/*
 * Where the return address of the cursor's frame (*ip) was read from: its
 * offset above sp, the word there checked to hold it; 0 when it was not
 * read from memory, or lies further than max.
 */
static uintptr_t ra_loc(unw_cursor_t *cur, uintptr_t sp, uintptr_t max, unw_word_t *ip)
{
	unw_save_loc_t loc;
	if (unw_get_reg(cur, UNW_REG_IP, ip) < 0 || unw_get_save_loc(cur, UNW_REG_IP, &loc) < 0 ||
	    loc.type != UNW_SLT_MEMORY)
		return 0;
	if (loc.u.addr > sp && loc.u.addr - sp <= max && loc.u.addr % sizeof(void *) == 0 &&
	    *(const unw_word_t *)(uintptr_t)loc.u.addr == *ip)
		return (uintptr_t)(loc.u.addr - sp);
	return 0;
}

static uintptr_t caller_ra_off(uintptr_t ret, uintptr_t sp, unsigned level)
{
	unw_context_t ctx;
	unw_cursor_t cur;
	uintptr_t off = PFS_RA_UNKNOWN, max = level == 1 ? PFS_RA_OFF_MAX : PFS_RA_OFF_DEEP_MAX;
	if (!unwind_enter())
		return 0;
	int masked = mask_begin();
	if (unw_getcontext(&ctx) == 0 && unw_init_local(&cur, &ctx) == 0 && step_to_call(&cur, ret, sp)) {
		unsigned up = 0;
		unw_word_t ip;
		while (up < level && unw_step(&cur) > 0)
			up++;
		uintptr_t o = up == level ? ra_loc(&cur, sp, max, &ip) : 0;
		if (o)
			off = o;
	}
	if (masked)
		mask_end();
	unwind_leave();
	return off;
}

/*
 * For a shared key (forkshare.c): where each caller's return address of the
 * call at (ret, sp) lies on the stack, off[i] from sp for frames[i], i in
 * 1..n-1, each checked to hold frames[i].  1 when every one was found in
 * memory there: the stack at sp then names the whole chain, and a child
 * whose stack holds those words at those places made the same call.
 */
#define PFS_SHARE_OFF_MAX (1u << 20)
static int callers_ra_offs(uintptr_t ret, uintptr_t sp, const uint64_t *frames, uint32_t *off, unsigned n)
{
	unw_context_t ctx;
	unw_cursor_t cur;
	unsigned level = 0;
	if (!unwind_enter())
		return 0;
	int masked = mask_begin();
	if (frames[0] == ret && unw_getcontext(&ctx) == 0 && unw_init_local(&cur, &ctx) == 0 &&
	    step_to_call(&cur, ret, sp)) {
		for (level = 1; level < n; level++) {
			unw_word_t ip;
			uintptr_t o = unw_step(&cur) > 0 ? ra_loc(&cur, sp, PFS_SHARE_OFF_MAX, &ip) : 0;
			if (!o || ip != frames[level])
				break;
			off[level] = (uint32_t)o;
		}
	}
	if (masked)
		mask_end();
	unwind_leave();
	off[0] = 0;
	return level == n;
}

/*
 * e, an empty entry or one taken over (cache_find did not find the key),
 * now holds the key (ret, sp, kind) with nothing known of it yet: no stack,
 * no counters, checked at its next call.
 */
static void entry_claim(struct pfs_thread *t, struct pfs_cache_ent *e, uintptr_t ret, uintptr_t sp, int kind)
{
	if (!e->ret)
		t->cache_used++;
	e->ret = ret;
	e->sp = sp;
	e->kind = (uint8_t)kind;
	e->stack = 0;
	e->verify = 0;
	e->depth = 0;
	e->slot = NULL;
}

static struct pfs_cache_ent *cache_find(struct pfs_thread *t, uintptr_t ret, uintptr_t sp, int kind, int *found);

/*
 * The qualifier of a key of depth d > 1 read from the stack, not unwound
 * (0: not known so).  The caller's callers f[1..d] are read one after the
 * other: f[1] where the key's entry says, each next one where the entry of
 * the key qualified by the frames read so far says (a qualified key that
 * was found shared, or is met here on the way: it holds that offset in
 * place of counters, found by stepping on first sight).  cc1 made 73,000
 * unwinds for keys of depth 2 to 5 (obstack and hash table growth behind
 * xmalloc), 0.7% of its time.  Entries may move (cache_find).
 */
static uint64_t qualify_read(struct pfs_thread *t, uintptr_t ret_off, int kind, uintptr_t ret, uintptr_t sp,
			     unsigned depth)
{
	void *f[PFS_QUALIFY_MAX + 1];
	f[0] = (void *)ret;
	f[1] = *(void *const *)(sp + ret_off);
	for (unsigned level = 1; level < depth; level++) {
		int found;
		struct pfs_cache_ent *m = cache_find(t, ret, pfs_qualify_hash(sp, f, (int)level + 1),
						     kind | PFS_QUALIFIED, &found);
		if (!found)
			entry_claim(t, m, ret, pfs_qualify_hash(sp, f, (int)level + 1), kind | PFS_QUALIFIED);
		if (!m->depth) { /* a key of this depth before, or new: it leads deeper now */
			m->depth = 1;
			m->ra_off = 0;
		}
		if (!m->ra_off)
			m->ra_off = caller_ra_off(ret, sp, level + 1);
		if (m->ra_off <= PFS_RA_UNKNOWN)
			return 0;
		f[level + 1] = *(void *const *)(sp + m->ra_off);
	}
	return pfs_qualify_hash(sp, f, (int)depth + 1);
}

/*
 * The qualified key's second word for a call at sp with the shared key's
 * entry e, its caller's first `depth` callers hashed; 0: not taken.  The
 * table may have changed (e found again by the caller).
 */
static uint64_t qualifier(struct pfs_thread *t, struct pfs_cache_ent *e, int kind, uintptr_t ret, uintptr_t sp,
			  unsigned depth)
{
	void *raw[PFS_MAX_FRAMES + 16];
	if (!e->ra_off)
		e->ra_off = caller_ra_off(ret, sp, 1);
	if (e->ra_off > PFS_RA_UNKNOWN) {
		if (depth == 1)
			return pfs_qualify_caller(e, ret, sp);
		uint64_t q = qualify_read(t, e->ra_off, kind, ret, sp, depth);
		if (q)
			return q;
	}
	if (!unwind_enter())
		return 0;
	int masked = unwind_steps() && mask_begin();
	/*
	 * The shim's own frames are 5 here (the hook, pfs_track_alloc,
	 * pfs_site_count_slow, this and unw_backtrace's caller): each frame
	 * asked for more costs a lookup in libunwind's trace cache.
	 */
	int want = (int)depth + 1, n = unwind_raw(raw, want + 8), i = self_frames(raw, n);
	if (n == want + 8 && n - i < want)
		i = self_frames(raw, n = unwind_raw(raw, (int)PFS_ARRAY_SIZE(raw)));
	if (masked)
		mask_end();
	unwind_leave();
	return pfs_qualify_hash(sp, raw + i, n - i < want ? n - i : want);
}

/* The table twice as large, its entries moved; kept as it is when no memory is left. */
static void cache_grow(struct pfs_thread *t)
{
	uint32_t bits = 64 - t->cache_shift;
	struct pfs_cache_ent *old = t->cache, *tab = pfs_pool_alloc(cache_bytes(bits + 1));
	if (!tab)
		return;
	pfs_prefault(tab, cache_bytes(bits + 1), MADV_POPULATE_WRITE); /* the entries moved in land all over it */
	uint64_t mask = ((uint64_t)2 << bits) - 1;
	struct pfs_thread grown = {.cache = tab, .cache_shift = t->cache_shift - 1};
	for (uint64_t i = 0; i < (uint64_t)1 << bits; i++) {
		if (!old[i].ret)
			continue;
		uint64_t j = pfs_cache_home(&grown, old[i].ret, old[i].sp, old[i].kind);
		while (tab[j].ret)
			j = (j + 1) & mask;
		tab[j] = old[i];
	}
	t->cache = tab;
	t->cache_shift--;
	if (old != t->cache0)
		pfs_pool_free(old, cache_bytes(bits));
	else /* left empty for a forked child to start from without writing it (pfs_sites_fork_child) */
		memset(old, 0, cache_bytes(bits));
}

/*
 * A key found further from its place than the inline path looks
 * (PFS_CACHE_PROBES) trades places with one of the entries it passes there,
 * each in turn: the inline path finds it from then on.  Before, such a key
 * took the slow path at every call: in cc1, qualified keys (below) so far
 * from their place made 125,000 of the 234,000 calls that left the inline
 * path.  The entry moved away stays reachable: the table has no holes
 * (entries are never removed), so every entry from its place to where it
 * goes is taken.  Callers hold no pointer to an entry across a cache_find.
 */
static __thread unsigned promote_turn __attribute__((tls_model("initial-exec")));

static struct pfs_cache_ent *cache_promote(struct pfs_thread *t, uint64_t home, uint64_t mask,
					   struct pfs_cache_ent *e)
{
	struct pfs_cache_ent *to = &t->cache[(home + promote_turn++ % PFS_CACHE_PROBES) & mask], moved = *to;
	*to = *e;
	*e = moved;
	return to;
}

/* The key's entry in a forked child's inherited table, or NULL (read only: its pages stay the parent's). */
static const struct pfs_cache_ent *inherited_find(const struct pfs_thread *t, uintptr_t ret, uintptr_t sp, int kind)
{
	const struct pfs_thread view = {.cache_shift = t->inherited_shift};
	uint64_t mask = ((uint64_t)1 << (64 - t->inherited_shift)) - 1, i = pfs_cache_home(&view, ret, sp, kind);
	for (uint64_t probes = 0; t->inherited[i].ret && probes <= mask; i = (i + 1) & mask, probes++) {
		const struct pfs_cache_ent *e = &t->inherited[i];
		if (e->ret == ret && e->sp == sp && e->kind == kind)
			return e;
	}
	return NULL;
}

/*
 * The key's entry (*found set), or the entry a new key takes: the first
 * empty one after its place, once the table has grown when it would be more
 * than three quarters full (half full took twice the memory, and with
 * thousands of sites a table past the CPU's caches costs a miss a call:
 * many_sites 10000 6% faster so); at the largest size, the key's place when
 * the run of entries from it is long.  A key a forked child's parent knew
 * (t->inherited) takes the new entry with its stack, without its counters.
 */
static struct pfs_cache_ent *cache_find_own(struct pfs_thread *t, uintptr_t ret, uintptr_t sp, int kind,
					    int *found);

static struct pfs_cache_ent *cache_find(struct pfs_thread *t, uintptr_t ret, uintptr_t sp, int kind, int *found)
{
	struct pfs_cache_ent *e = cache_find_own(t, ret, sp, kind, found);
	const struct pfs_cache_ent *p;
	if (*found || !t->inherited || e->ret || !(p = inherited_find(t, ret, sp, kind)))
		return e;
	*e = *p;
	if (!e->depth)
		e->slot = NULL;
	t->cache_used++;
	*found = 1;
	return e;
}

static struct pfs_cache_ent *cache_find_own(struct pfs_thread *t, uintptr_t ret, uintptr_t sp, int kind,
					    int *found)
{
	for (;;) {
		uint64_t mask = ((uint64_t)1 << (64 - t->cache_shift)) - 1, home = pfs_cache_home(t, ret, sp, kind);
		uint64_t i = home;
		for (unsigned probes = 0; t->cache[i].ret; i = (i + 1) & mask, probes++) {
			struct pfs_cache_ent *e = &t->cache[i];
			if (e->ret == ret && e->sp == sp && e->kind == kind) {
				*found = 1;
				return probes < PFS_CACHE_PROBES ? e : cache_promote(t, home, mask, e);
			}
			if (probes == 32 && 64 - t->cache_shift >= PFS_CACHE_MAX_BITS) {
				*found = 0;
				return &t->cache[home];
			}
		}
		*found = 0;
		if (t->cache_used + 1 <= (mask + 1) / 4 * 3 || 64 - t->cache_shift >= PFS_CACHE_MAX_BITS)
			return &t->cache[i];
		uint32_t shift = t->cache_shift;
		cache_grow(t);
		if (t->cache_shift == shift)
			return &t->cache[i]; /* no memory to grow: fuller */
	}
}

/*
 * Unwinds the call site and keeps its stack in the key's entry e (found: e
 * holds the key already; fresh: the call's return address is likely new to
 * libunwind).  An entry found with another stack is marked (depth 1): the
 * key is shared.  may_share: in a forked child the frames may come from a
 * sibling that unwound the same whole chain of return addresses
 * (forkshare.c): as exact as the unwind, whether the key is new, due for its
 * check, or one that is always unwound (a record's own site, a key of many
 * stacks).  A bash child's one large block (stdio's buffer, a record of its
 * own) was a full first unwind in every command substitution: 270 us and 15
 * copied pages of libunwind's and the loader's state.
 */
static uint32_t unwind_into(struct pfs_thread *t, struct pfs_cache_ent *e, int found, int fresh, int kind,
			    uintptr_t ret, uintptr_t sp, int may_share)
{
	int saved = errno; /* unwinding and logging may make system calls; the program's errno stays */
	struct share_key key = {ret, sp, kind};
	uint32_t stack = unwind_site(t, fresh, may_share ? &key : NULL);
	errno = saved;
	if (stack == unknown_stack) {
		/* Not cached: the key's next call unwinds again. */
		if (found)
			e->verify = 1;
		return stack;
	}
	if (found) {
		if (e->stack != stack && !e->depth) {
			e->depth = 1; /* two stacks share this key */
			e->slot = NULL;
		}
	} else {
		entry_claim(t, e, ret, sp, kind);
	}
	e->stack = stack;
	e->verify = PFS_VERIFY_EVERY;
	return stack;
}

/* The key's entry when it may be used without unwinding (the fast path's rule), else NULL. */
static struct pfs_cache_ent *cache_hit(struct pfs_cache_ent *e, int found)
{
	/* An entry whose count reached 0 in the inline path is checked now. */
	return found && !e->depth && e->verify != 0 && --e->verify != 0 ? e : NULL;
}

/*
 * The stack of a call, from the table or unwound (the table updated), and
 * in *bound the entry that answers for such calls now (NULL: none).
 */
static uint32_t site_resolve(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp,
			     struct pfs_cache_ent **bound)
{
	int found;
	struct pfs_cache_ent *e = cache_find(t, ret, sp, kind, &found);
	unsigned depth = found ? e->depth : 0;
	uint64_t q = 0;
	if (depth && depth != PFS_DEPTH_FULL) {
		q = qualifier(t, e, kind, ret, sp, depth);
		if (depth > 1) /* the table may have changed (qualify_read) */
			e = cache_find(t, ret, sp, kind, &found);
	}
	*bound = NULL;
	if (!q) {
		if (cache_hit(e, found)) {
			*bound = e;
			return e->stack;
		}
		uint32_t stack = unwind_into(t, e, found, !found, kind, ret, sp, 1);
		if (stack != unknown_stack && !e->depth)
			*bound = e;
		return stack;
	}
	int qfound;
	struct pfs_cache_ent *qe = cache_find(t, ret, q, kind | PFS_QUALIFIED, &qfound);
	if (cache_hit(qe, qfound)) {
		*bound = qe;
		return qe->stack;
	}
	/* A new qualified key is a new path: its frames are often new to libunwind too. */
	uint32_t stack = unwind_into(t, qe, qfound, !qfound, kind | PFS_QUALIFIED, ret, q, 0); /* q is no stack pointer */
	if (stack == unknown_stack)
		return stack;
	if (!qe->depth) {
		*bound = qe;
		return stack;
	}
	/* The qualified key is shared too: the key asks for more frames (the table may have grown: found again). */
	e = cache_find(t, ret, sp, kind, &found);
	if (found && e->depth == depth)
		e->depth = (uint8_t)(depth < PFS_QUALIFY_MAX ? depth + 1 : PFS_DEPTH_FULL);
	return stack;
}

uint32_t pfs_site_lookup_slow(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp)
{
	struct pfs_cache_ent *bound;
	return site_resolve(t, kind, ret, sp, &bound);
}

uint32_t pfs_site_unwind(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp)
{
	int found;
	struct pfs_cache_ent *e = cache_find(t, ret, sp, kind, &found);
	return unwind_into(t, e, found, !found, kind, ret, sp, 1); /* a record's own site: unwound, or a sibling's same chain */
}

static struct pfs_counter_slot *new_slot(struct pfs_thread *t, uint32_t stack, int kind)
{
	if (!t->free_slots_left) {
		uint32_t size = sizeof(struct pfs_rec_counters) + PFS_COUNTER_SLOTS * sizeof(struct pfs_counter_slot);
		struct pfs_rec_counters *r = pfs_rec_begin_kept(&t->w, size);
		struct counters_ref *ref = r ? pfs_arena_alloc(sizeof(*ref)) : NULL;
		if (!ref)
			return NULL;
		r->nslots = PFS_COUNTER_SLOTS;
		pfs_rec_end(r, PFS_REC_COUNTERS, 0, size);
		ref->slots = r->slots;
		pfs_spin_lock(&counters_lock);
		ref->next = counters;
		counters = ref;
		pfs_spin_unlock(&counters_lock);
		t->free_slots = r->slots;
		t->free_slots_left = PFS_COUNTER_SLOTS;
	}
	pfs_stack_used(t, stack);
	struct pfs_counter_slot *s = t->free_slots++;
	t->free_slots_left--;
	s->kind = (uint8_t)kind;
	__atomic_store_n(&s->stack, stack, __ATOMIC_RELEASE); /* a non-zero stack marks the slot used */
	return s;
}

/* This thread's counter slot for (stack, kind), made on first use. */
static struct pfs_counter_slot *slot_for(struct pfs_thread *t, uint32_t stack, int kind)
{
	uint64_t key = (uint64_t)stack << 8 | (uint64_t)kind;
	struct pfs_slotmap *m;
	HASH_FIND(hh, t->slots, &key, sizeof(key), m);
	if (m)
		return m->slot;
	m = pfs_arena_alloc(sizeof(*m));
	if (!m)
		return NULL;
	m->key = key;
	m->slot = new_slot(t, stack, kind);
	if (!m->slot)
		return NULL;
	HASH_ADD(hh, t->slots, key, sizeof(key), m);
	return m->slot;
}

void pfs_site_count_slow(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp, uint64_t size)
{
	struct pfs_cache_ent *e;
	uint32_t stack = site_resolve(t, kind, ret, sp, &e);
	if (!stack)
		return;
	struct pfs_counter_slot *slot = e ? e->slot : NULL;
	if (!slot) {
		int saved = errno;
		slot = slot_for(t, stack, kind);
		errno = saved;
		if (!slot)
			return;
		if (e)
			e->slot = slot; /* the entry is bound to its key and stack now */
	}
	slot->count++;
	slot->bytes += size;
}

void pfs_counters_total(uint64_t *count, uint64_t *bytes)
{
	uint64_t c = 0, b = 0;
	pfs_spin_lock(&counters_lock);
	for (struct counters_ref *r = counters; r; r = r->next)
		for (uint32_t i = 0; i < PFS_COUNTER_SLOTS; i++) {
			c += r->slots[i].count;
			b += r->slots[i].bytes;
		}
	pfs_spin_unlock(&counters_lock);
	*count = c;
	*bytes = b;
}
