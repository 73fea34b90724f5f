/*
 * Call sites first seen in forked children, shared among the children of
 * one image.
 *
 * A forked child inherits its parent's site cache, but what it runs after
 * the fork is often code its parent never ran (a shell's child: redirections,
 * signals, the exec), and every allocation there is a key it sees first: an
 * unwind each, 63 us in a bash child against 10 us in its parent (the
 * unwind writes libunwind's caches and the loader's lock, pages shared with
 * the parent: each a copy).  The next child of the same parent runs the
 * same code and unwound the same keys again.  This table, mapped shared
 * (MAP_SHARED) by the parent before its first fork, holds the frames a
 * child unwound for such a key; its siblings (and their own children) take
 * them from there.  A key (return address, stack pointer) can stand for
 * several call paths (a wrapper like xmalloc called from two callers at
 * the same depth): a child's first call with a key is unwound, so it is
 * exact, and a sibling's frames must not make it less so (a bash child's
 * itos and make_variable_value allocations took array_create's frames).
 * Nor was checking two callers enough: a child's itos block went to a
 * sibling's set_pipestatus_array -> execute_command_internal where its own
 * path went through wait_for.  So an entry holds, for every frame past the
 * first, where on the stack the unwinder read its return address (an
 * offset from the stack pointer: sites.c); a child takes the frames only
 * when its own stack holds each frame's address at its place: the same
 * chain of calls, as an unwind would have found it.  A process that
 * loaded or unloaded an object since the table was made neither reads nor
 * adds.  The check makes a sibling's frames as good as an unwind for every
 * call a child would unwind: a key seen first, one due for its periodic
 * check, one always unwound (a record's own site, sites.h).  The parent's
 * own first sights stay in its cache, which its children inherit.  After
 * an exec the image has no table (the mapping is gone with the old image).
 *
 * Slots are claimed by compare-and-swap and published with a release store
 * of their state once written; a child killed while writing leaves its
 * slot claimed and unpublished, skipped by readers.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "forkshare.h"
#include "kcompat.h"
#include "modules.h"
#include "proc.h"
#include "thread.h"
#include "util.h"

#define SHARE_SLOTS 256u
#define SHARE_PROBES 8u

enum { SLOT_EMPTY, SLOT_WRITING, SLOT_READY };

struct share_ent {
	uint32_t state;
	uint16_t kind, flags;
	uint32_t n;
	uint64_t ret, sp;
	uint32_t off[PFS_MAX_FRAMES]; /* where frames[i] (i >= 1) lies on the stack, from sp */
	uint64_t frames[PFS_MAX_FRAMES];
};

struct share {
	pid_t maker;	     /* the process that made it: its first sights are its cache's */
	uint64_t adds, subs; /* the loader's counts then */
	struct share_ent e[SHARE_SLOTS];
};

static struct share *share;
static int share_failed;
/*
 * The thread that forked when the table was made: only it (the child's one
 * thread after a fork from it) reads and adds.  Entries' return addresses
 * lie on its stack; another thread's stack at the same address may be
 * shorter.
 */
static struct pfs_thread *share_thread;

void pfs_forkshare_prepare(void)
{
	if (share || share_failed || !pfs_proc.enabled || !pfs_tls_thread)
		return;
	pfs_modules_sync(0); /* the counts its children compare with theirs */
	size_t ps = (size_t)sysconf(_SC_PAGESIZE), len = (sizeof(struct share) + ps - 1) & ~(ps - 1);
	void *p = pfs_sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		share_failed = 1; /* children unwind as before */
		return;
	}
	pfs_self_note((uint64_t)(uintptr_t)p, len);
	struct share *s = p;
	s->maker = pfs_proc.pid;
	pfs_modules_seen(&s->adds, &s->subs);
	share_thread = pfs_tls_thread;
	share = s;
}

/*
 * A child maps the table's pages by one call at its first look: the fork
 * copied no page table entry of this shared mapping, and the entries a
 * child reads lie on pages all over it (3-4 page faults a subshell).
 */
static void share_present(struct share *s)
{
	static pid_t present_in;
	if (present_in == pfs_proc.pid)
		return;
	present_in = pfs_proc.pid;
	pfs_prefault(s, sizeof(*s), MADV_POPULATE_READ);
}

/* The table, when this process may use it. */
static struct share *usable(void)
{
	struct share *s = share;
	uint64_t adds, subs;
	if (!s || pfs_tls_thread != share_thread)
		return NULL;
	share_present(s); /* before its first read (the maker's own pages are present: a call for nothing) */
	if (s->maker == pfs_proc.pid)
		return NULL;
	pfs_modules_seen(&adds, &subs);
	return adds == s->adds && subs == s->subs ? s : NULL;
}

int pfs_forkshare_wanted(void)
{
	return usable() != NULL;
}

static uint32_t home(uint64_t ret, uint64_t sp, int kind)
{
	uint64_t h = ret * 0x9E3779B97F4A7C15ull ^ sp * 0xC2B2AE3D27D4EB4Full ^ (uint64_t)kind;
	return (uint32_t)(h >> 40) % SHARE_SLOTS;
}

static int is_key(const struct share_ent *x, uint64_t ret, uint64_t sp, int kind)
{
	return x->ret == ret && x->sp == sp && x->kind == (uint16_t)kind;
}

/* The entry's chain is this call's: each frame's return address on this stack where a sibling's was, at the same sp. */
static int same_callers(const struct share_ent *x, uint64_t sp)
{
	for (uint32_t i = 1; i < x->n; i++)
		if (*(const uint64_t *)(uintptr_t)(sp + x->off[i]) != x->frames[i])
			return 0;
	return 1;
}

int pfs_forkshare_find(uint64_t ret, uint64_t sp, int kind, uint64_t *frames, uint32_t *n, uint16_t *flags)
{
	struct share *s = usable();
	if (!s)
		return 0;
	for (uint32_t i = 0, h = home(ret, sp, kind); i < SHARE_PROBES; i++) {
		struct share_ent *x = &s->e[(h + i) % SHARE_SLOTS];
		uint32_t st = __atomic_load_n(&x->state, __ATOMIC_ACQUIRE);
		if (st == SLOT_EMPTY)
			return 0;
		if (st == SLOT_READY && is_key(x, ret, sp, kind) && x->n <= PFS_MAX_FRAMES && same_callers(x, sp)) {
			*n = x->n;
			*flags = x->flags;
			memcpy(frames, x->frames, x->n * sizeof(*frames));
			return 1;
		}
	}
	return 0;
}

void pfs_forkshare_add(uint64_t ret, uint64_t sp, int kind, const uint32_t *off, const uint64_t *frames,
		       uint32_t n, uint16_t flags)
{
	struct share *s = usable();
	if (!s || n > PFS_MAX_FRAMES)
		return;
	for (uint32_t i = 0, h = home(ret, sp, kind); i < SHARE_PROBES; i++) {
		struct share_ent *x = &s->e[(h + i) % SHARE_SLOTS];
		uint32_t st = __atomic_load_n(&x->state, __ATOMIC_ACQUIRE);
		if (st == SLOT_READY && is_key(x, ret, sp, kind) && same_callers(x, sp))
			return; /* a sibling's */
		if (st != SLOT_EMPTY)
			continue;
		uint32_t empty = SLOT_EMPTY;
		if (!__atomic_compare_exchange_n(&x->state, &empty, SLOT_WRITING, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			continue;
		x->ret = ret;
		x->sp = sp;
		x->kind = (uint16_t)kind;
		x->flags = flags;
		x->n = n;
		memcpy(x->off, off, n * sizeof(*off));
		memcpy(x->frames, frames, n * sizeof(*frames));
		__atomic_store_n(&x->state, SLOT_READY, __ATOMIC_RELEASE);
		return;
	}
}
