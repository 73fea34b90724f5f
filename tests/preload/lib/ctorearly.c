/*
 * A library whose constructor allocates and fills memory before the shim's constructor runs
 * (the loader runs a needed library's constructor before a preloaded one's), as libLLVM's and
 * libstdc++'s do.  First 64 pages mapped by mmap and written (no malloc yet: the shim starts at
 * the program's first malloc, so they were touched before it started), then a 1 MiB block from
 * malloc (a mapping of its own: 257 pages with malloc's header) written whole.
 */
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>

#define MAPPED_PAGES 64
#define BLOCK (1 << 20)

static char *mapped, *block;

__attribute__((constructor)) static void ctorearly_init(void)
{
	long page = 4096;
	mapped = mmap(NULL, MAPPED_PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mapped != MAP_FAILED)
		memset(mapped, 1, MAPPED_PAGES * page);
	block = malloc(BLOCK);
	if (block)
		memset(block, 2, BLOCK);
}

/* What the constructor wrote, summed: the program calls it (and so links the library). */
unsigned long ctorearly_sum(void)
{
	unsigned long sum = 0;
	for (long i = 0; mapped != MAP_FAILED && i < MAPPED_PAGES * 4096L; i += 4096)
		sum += (unsigned char)mapped[i];
	for (long i = 0; block && i < BLOCK; i += 4096)
		sum += (unsigned char)block[i];
	return sum;
}
