/*
 * A program that is one storm: 64 MiB allocated and written page by page
 * at once, then freed.  Nothing else it does faults, so its median rate is
 * the storm itself: a storm rule relative to the program's own rate finds
 * none (issue 18); the cost rule must find it, with its site.
 */
#include <stdio.h>
#include <stdlib.h>

#define STORM_BYTES (64ul << 20)

long storm_fill(void)
{
	char *p = malloc(STORM_BYTES);
	long sum = 0;

	if (!p)
		return -1;
	for (size_t off = 0; off < STORM_BYTES; off += 4096)
		p[off] = (char)(off >> 12);
	for (size_t off = 0; off < STORM_BYTES; off += 4096)
		sum += p[off];
	free(p);
	return sum;
}

int main(void)
{
	printf("checksum %ld\n", storm_fill());
	return 0;
}
