/*
 * A program with an allocator of its own in the executable (as rustc links jemalloc), which
 * every object's malloc reaches, the shim's start's included: it maps its memory while holding
 * its lock, a mutex that does not nest.  Its library's constructor allocates (libctorheap, run
 * before the shim's constructor), so that allocator maps its first memory before the shim
 * started.  rustc's jemalloc showed it: a shim that started inside that mmap called malloc
 * (the loader, asked for a symbol, formats an error) and waited for the lock it was under.
 * The output is the same natively and under the shim.
 */
#include <stdio.h>
#include <string.h>

#include "bump_alloc.h"

unsigned long ctorheap_sum(void);

int main(void)
{
	char *block = malloc(1 << 16);
	memset(block, 5, 1 << 16);
	printf("own allocator; checksum %lu\n", ctorheap_sum() + (unsigned char)block[100]);
	return 0;
}
