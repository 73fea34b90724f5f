/*
 * A fault storm: one large allocation touched page by page right after
 * malloc (demand paging: every first touch is a page fault), among quiet
 * small allocations.  Run it natively and under the shim.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORM_BYTES (64u << 20)

/* The storm's allocation: 64 MiB, every page written once. */
char *storm_site(void)
{
	char *p = malloc(STORM_BYTES);
	if (!p)
		return NULL;
	for (size_t off = 0; off < STORM_BYTES; off += 4096)
		p[off] = (char)(off >> 12);
	return p;
}

/* Quiet allocations: small blocks on already-touched heap pages. */
void quiet_site(void **keep, int n)
{
	for (int i = 0; i < n; i++)
		keep[i] = malloc(64);
}

int main(void)
{
	void *keep[1000];
	quiet_site(keep, 1000);
	char *p = storm_site();
	if (!p)
		return 1;
	unsigned long sum = 0;
	for (size_t off = 0; off < STORM_BYTES; off += 4096)
		sum += (unsigned char)p[off];
	printf("touched %u MiB, checksum %lu\n", STORM_BYTES >> 20, sum);
	free(p);
	for (int i = 0; i < 1000; i++)
		free(keep[i]);
	return 0;
}
