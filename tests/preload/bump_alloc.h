/*
 * A bump allocator as the malloc family, freeing nothing, mapping its memory under a lock that
 * does not nest (as jemalloc maps its first pages under its init lock): included where a test
 * program (tests/preload/own_malloc_lock.c) or library (lib/bumpalloc.c) brings an allocator of
 * its own.
 */
#ifndef PFS_TEST_BUMP_ALLOC_H
#define PFS_TEST_BUMP_ALLOC_H
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *cur, *end;
static unsigned long served;

#define HEADER 16

static void *bump(size_t n, size_t align)
{
	pthread_mutex_lock(&lock);
	uintptr_t p = ((uintptr_t)cur + HEADER + align - 1) & ~(uintptr_t)(align - 1);
	if (!cur || p + n > (uintptr_t)end) {
		size_t size = (n + align + HEADER + (1 << 20)) & ~(size_t)4095;
		char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			pthread_mutex_unlock(&lock);
			errno = ENOMEM;
			return NULL;
		}
		cur = m, end = m + size;
		p = ((uintptr_t)cur + HEADER + align - 1) & ~(uintptr_t)(align - 1);
	}
	((size_t *)p)[-1] = n;
	cur = (char *)(p + n);
	served++;
	pthread_mutex_unlock(&lock);
	return (void *)p;
}

void *malloc(size_t n) { return bump(n, 16); }
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) { return bump(a * b, 16); } /* fresh memory is zero */
void *memalign(size_t align, size_t n) { return bump(n, align < 16 ? 16 : align); }
void *aligned_alloc(size_t align, size_t n) { return memalign(align, n); }
int posix_memalign(void **out, size_t align, size_t n)
{
	*out = memalign(align, n);
	return *out ? 0 : ENOMEM;
}
size_t malloc_usable_size(void *p) { return p ? ((size_t *)p)[-1] : 0; }
void *realloc(void *p, size_t n)
{
	void *q = malloc(n);
	if (q && p) {
		size_t old = ((size_t *)p)[-1];
		memcpy(q, p, old < n ? old : n);
	}
	return q;
}

#endif
