/*
 * A library that grows the heap in its constructor (as libselinux does): the dynamic loader runs a
 * needed library's constructor before a preloaded one's, so before the shim's.  4000 blocks of
 * 100 B (about 450 KiB: past the heap's first 132 KiB, so brk grows), every other one freed
 * again: those chunks, below where the heap was when the shim started, serve later mallocs.
 */
#include <stdlib.h>
#include <string.h>

#define N 4000

static char *blocks[N];

__attribute__((constructor)) static void ctorheap_init(void)
{
	for (int i = 0; i < N; i++) {
		blocks[i] = malloc(100);
		if (blocks[i])
			memset(blocks[i], i & 0x7f, 100);
	}
	for (int i = 0; i < N; i += 2) {
		free(blocks[i]);
		blocks[i] = NULL;
	}
}

/* The sum of what the constructor left: the program calls it (and so links the library). */
unsigned long ctorheap_sum(void)
{
	unsigned long sum = 0;

	for (int i = 0; i < N; i++)
		if (blocks[i])
			sum += (unsigned char)blocks[i][99];
	return sum;
}
