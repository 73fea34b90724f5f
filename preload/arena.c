/* A bump allocator over 1 MiB anonymous mappings, for the shim's tables. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "kcompat.h"
#include "util.h"

#define ARENA_CHUNK (1u << 20)
#define ARENA_BIG (64u * 1024)

static pfs_spin_t arena_lock = PFS_SPIN_INIT;
static char *arena_cur, *arena_end;
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
static char *arena_ready; /* present up to here in the current chunk */

static void ready_up_to(char *cur)
{
	char *to = arena_ready;
	while (to < cur)
		to += ARENA_AHEAD;
	if (to > arena_end)
		to = arena_end;
	pfs_prefault(arena_ready, (size_t)(to - arena_ready), MADV_POPULATE_WRITE);
	arena_ready = to;
}

void *pfs_arena_alloc(size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size >= ARENA_BIG) {
		size_t len = (size + 4095) & ~(size_t)4095;
		void *p = map_anon(len);
		if (p)
			__atomic_add_fetch(&arena_total, len, __ATOMIC_RELAXED);
		return p;
	}
	pfs_spin_lock(&arena_lock);
	if ((size_t)(arena_end - arena_cur) < size) {
		char *c = map_anon(ARENA_CHUNK);
		if (!c) {
			pfs_spin_unlock(&arena_lock);
			return NULL;
		}
		arena_cur = arena_ready = c;
		arena_end = c + ARENA_CHUNK;
		__atomic_add_fetch(&arena_total, ARENA_CHUNK, __ATOMIC_RELAXED);
	}
	void *p = arena_cur;
	arena_cur += size;
	if (arena_cur > arena_ready)
		ready_up_to(arena_cur);
	pfs_spin_unlock(&arena_lock);
	return p;
}

#define POOL_MIN_SHIFT 5
#define POOL_MAX_SHIFT 16
static void *pool_free_list[POOL_MAX_SHIFT + 1];

static unsigned pool_class(size_t size)
{
	unsigned c = POOL_MIN_SHIFT;
	while (((size_t)1 << c) < size)
		c++;
	return c;
}

void *pfs_pool_alloc(size_t size)
{
	unsigned c = pool_class(size);
	if (c > POOL_MAX_SHIFT)
		return pfs_arena_alloc(size);
	pfs_spin_lock(&arena_lock);
	void *p = pool_free_list[c];
	if (p)
		pool_free_list[c] = *(void **)p;
	pfs_spin_unlock(&arena_lock);
	if (!p)
		return pfs_arena_alloc((size_t)1 << c);
	memset(p, 0, (size_t)1 << c);
	return p;
}

void pfs_pool_free(void *p, size_t size)
{
	if (!p)
		return;
	unsigned c = pool_class(size);
	if (c > POOL_MAX_SHIFT) {
		pfs_arena_free(p, size);
		return;
	}
	pfs_spin_lock(&arena_lock);
	*(void **)p = pool_free_list[c];
	pool_free_list[c] = p;
	pfs_spin_unlock(&arena_lock);
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
}
