/*
 * A program with an allocator of its own in the executable (as rustc links jemalloc), which
 * every object's malloc reaches, the shim's start's included: it maps its memory while holding
 * its lock, a mutex that does not nest.  Its library's constructor allocates (libctorheap, run
 * before the shim's constructor), so that allocator maps its first memory before the shim
 * started.  rustc's jemalloc showed it: a shim that started inside that mmap called malloc
 * (the loader, asked for a symbol, formats an error) and waited for the lock it was under.
 * The output is the same natively and under the shim.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

unsigned long ctorheap_sum(void);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *cur, *end;

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
			return NULL;
		}
		cur = m, end = m + size;
		p = ((uintptr_t)cur + HEADER + align - 1) & ~(uintptr_t)(align - 1);
	}
	((size_t *)p)[-1] = n;
	cur = (char *)(p + n);
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
	return *out ? 0 : 12;
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

int main(void)
{
	char *block = malloc(1 << 16);
	memset(block, 5, 1 << 16);
	printf("own allocator; checksum %lu\n", ctorheap_sum() + (unsigned char)block[100]);
	return 0;
}
