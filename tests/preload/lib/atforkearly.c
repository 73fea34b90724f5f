/*
 * A library that registers a fork child handler in its constructor (as
 * jemalloc does at its first malloc): the dynamic loader runs a needed
 * library's constructor before a preloaded one's, so before the shim's.
 * The constructor maps and writes 64 pages (memory from before the shim
 * started); the child handler writes one byte in each: 64 copies in every
 * forked child.  Its parent handler, which runs before the shim's, writes
 * the first 32: 32 copies in the parent at each fork.
 */
#include <pthread.h>
#include <sys/mman.h>

#define PAGES 64

static char *early_pages;

static void early_parent(void)
{
	for (int i = 0; early_pages && i < PAGES / 2; i++)
		early_pages[i * 4096] = 'f';
}

static void early_child(void)
{
	for (int i = 0; early_pages && i < PAGES; i++)
		early_pages[i * 4096] = 'c';
}

/* The pages the handler writes (and a name the program uses, so that it links the library). */
int atforkearly_pages(void)
{
	return early_pages ? PAGES : 0;
}

__attribute__((constructor)) static void atforkearly_init(void)
{
	char *p = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	for (int i = 0; i < PAGES; i++)
		p[i * 4096] = 'p';
	early_pages = p;
	pthread_atfork(NULL, early_parent, early_child);
}
