/* A bump allocator over 1 MiB anonymous mappings, for the shim's tables. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "kcompat.h"
#include "util.h"

#define ARENA_CHUNK (1u << 20)
#define ARENA_BIG (64u * 1024)

static pfs_spin_t arena_lock = PFS_SPIN_INIT;
static size_t arena_total;

/*
 * The shim's own mappings: a small table, searched only when a scan meets
 * memory no region holds.  Entries are taken first free, so all of them lie
 * below self_n: searches stop there (a search of all 512 read 8 KiB, three
 * fresh pages at every process's start).
 */
#define SELF_MAX 512
static struct {
	uint64_t start, end;
} self[SELF_MAX];
static unsigned self_n;
static pfs_spin_t self_lock = PFS_SPIN_INIT;

void pfs_self_note(uint64_t addr, uint64_t len)
{
	pfs_spin_lock(&self_lock);
	if (!self_n) /* a start's first: the table's first page made present by one call, not a fault (a large table, .lbss) */
		pfs_prefault(self, sizeof(self[0]), MADV_POPULATE_WRITE);
	for (unsigned i = 0; i < SELF_MAX; i++)
		if (!self[i].end) {
			self[i].start = addr;
			self[i].end = addr + len;
			if (i >= self_n)
				self_n = i + 1;
			break;
		}
	pfs_spin_unlock(&self_lock);
}

void pfs_self_forget(uint64_t addr)
{
	pfs_spin_lock(&self_lock);
	for (unsigned i = 0; i < self_n; i++)
		if (self[i].start == addr)
			self[i].start = self[i].end = 0;
	pfs_spin_unlock(&self_lock);
}

int pfs_self_find(uint64_t addr, uint64_t *start, uint64_t *end)
{
	int found = 0;
	pfs_spin_lock(&self_lock);
	for (unsigned i = 0; i < self_n && !found; i++)
		if (addr >= self[i].start && addr < self[i].end) {
			*start = self[i].start;
			*end = self[i].end;
			found = 1;
		}
	pfs_spin_unlock(&self_lock);
	return found;
}

uint64_t pfs_self_next(uint64_t addr)
{
	uint64_t next = UINT64_MAX;
	pfs_spin_lock(&self_lock);
	for (unsigned i = 0; i < self_n; i++)
		if (self[i].end && self[i].start > addr && self[i].start < next)
			next = self[i].start;
	pfs_spin_unlock(&self_lock);
	return next;
}

static void *map_anon(size_t size)
{
	void *p = pfs_sys_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	pfs_self_note((uint64_t)(uintptr_t)p, size);
	return p;
}

/*
 * What the arena hands out is written soon (a bump allocator's pages fill
 * in order): made present ARENA_AHEAD at a time, not a fault each.  A short
 * process used about 30 of its pages.  The large tables (ARENA_BIG, their
 * own mappings) are written sparsely, and left to fault.
 */
#define ARENA_AHEAD (64u * 1024)

/*
 * A bump space over chunks, with power-of-two size classes from 32 bytes
 * to 64 KiB on free lists.  Two: the arena, which a forked child inherits,
 * and the per-fork pool (arena.h), whose chunks are MADV_WIPEONFORK.
 */
#define POOL_MIN_SHIFT 5
#define POOL_MAX_SHIFT 16
struct space {
	char *cur, *end;
	char *ready;  /* present up to here in the current chunk */
	size_t ahead; /* made present this much at a time */
	int wipe;     /* chunks and large blocks MADV_WIPEONFORK */
	void *free_list[POOL_MAX_SHIFT + 1];
};
static struct space arena = {.ahead = ARENA_AHEAD}, per_fork = {.ahead = 4096, .wipe = 1}; /* a few pages a process */

static void *space_map(struct space *s, size_t len)
{
	void *p = map_anon(len);
	/*
	 * Before 4.14 no wiping: the child inherits the memory as it does the
	 * arena's, copied where written, and still forgets what it held.
	 */
	int saved = errno;
	if (p && s->wipe && pfs_sys_madvise(p, len, MADV_WIPEONFORK)) /* the system call: madvise is a hook */
		errno = saved;
	if (p)
		__atomic_add_fetch(&arena_total, len, __ATOMIC_RELAXED);
	return p;
}

static void ready_up_to(struct space *s)
{
	char *to = s->ready;
	while (to < s->cur)
		to += s->ahead;
	if (to > s->end)
		to = s->end;
	pfs_prefault(s->ready, (size_t)(to - s->ready), MADV_POPULATE_WRITE);
	s->ready = to;
}

static void *space_alloc(struct space *s, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size >= ARENA_BIG)
		return space_map(s, (size + 4095) & ~(size_t)4095);
	pfs_spin_lock(&arena_lock);
	if ((size_t)(s->end - s->cur) < size) {
		char *c = space_map(s, ARENA_CHUNK);
		if (!c) {
			pfs_spin_unlock(&arena_lock);
			return NULL;
		}
		s->cur = s->ready = c;
		s->end = c + ARENA_CHUNK;
	}
	void *p = s->cur;
	s->cur += size;
	if (s->cur > s->ready)
		ready_up_to(s);
	pfs_spin_unlock(&arena_lock);
	return p;
}

void *pfs_arena_alloc(size_t size)
{
	return space_alloc(&arena, size);
}

static unsigned pool_class(size_t size)
{
	unsigned c = POOL_MIN_SHIFT;
	while (((size_t)1 << c) < size)
		c++;
	return c;
}

static void *pool_alloc(struct space *s, size_t size)
{
	unsigned c = pool_class(size);
	if (c > POOL_MAX_SHIFT)
		return space_alloc(s, size);
	pfs_spin_lock(&arena_lock);
	void *p = s->free_list[c];
	if (p)
		s->free_list[c] = *(void **)p;
	pfs_spin_unlock(&arena_lock);
	if (!p)
		return space_alloc(s, (size_t)1 << c);
	memset(p, 0, (size_t)1 << c);
	return p;
}

static void pool_free(struct space *s, void *p, size_t size)
{
	if (!p)
		return;
	unsigned c = pool_class(size);
	if (c > POOL_MAX_SHIFT) {
		pfs_arena_free(p, size);
		return;
	}
	pfs_spin_lock(&arena_lock);
	*(void **)p = s->free_list[c];
	s->free_list[c] = p;
	pfs_spin_unlock(&arena_lock);
}

void *pfs_pool_alloc(size_t size)
{
	return pool_alloc(&arena, size);
}

void pfs_pool_free(void *p, size_t size)
{
	pool_free(&arena, p, size);
}

void *pfs_forkpool_alloc(size_t size)
{
	return pool_alloc(&per_fork, size);
}

void pfs_forkpool_free(void *p, size_t size)
{
	pool_free(&per_fork, p, size);
}

void pfs_arena_free(void *p, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (p && size >= ARENA_BIG) {
		size_t len = (size + 4095) & ~(size_t)4095;
		pfs_self_forget((uint64_t)(uintptr_t)p);
		pfs_sys_munmap(p, len);
		__atomic_sub_fetch(&arena_total, len, __ATOMIC_RELAXED);
	}
}

size_t pfs_arena_bytes(void)
{
	return __atomic_load_n(&arena_total, __ATOMIC_RELAXED);
}

void pfs_arena_lock(void)
{
	pfs_spin_lock(&arena_lock);
}

void pfs_arena_unlock(void)
{
	pfs_spin_unlock(&arena_lock);
}

void pfs_arena_child_reset(void)
{
	arena_lock = (pfs_spin_t)PFS_SPIN_INIT;
	self_lock = (pfs_spin_t)PFS_SPIN_INIT;
	/*
	 * The per-fork pool's blocks are gone (wiped: the free lists' links
	 * with them); its chunk goes on from where the parent had got to, the
	 * memory past it untouched in both.  Blocks of 64 KiB and more stay
	 * mapped, empty, never touched again (bitmaps of regions of terabytes).
	 */
	memset(per_fork.free_list, 0, sizeof(per_fork.free_list));
	per_fork.ready = per_fork.cur;
}
