/*
 * A storm site and a quiet site, for policies: the storm's 16 MiB block is
 * written page by page right after malloc (4095 first touches: its first
 * page holds the chunk header, which malloc touched); the quiet site's
 * 4 MiB block gets 100 pages written; heap_site's 8 blocks of 64 KiB live
 * on malloc's heap (under the mmap threshold) and are written whole.  storm_site is static and the program
 * is linked without -rdynamic: only .symtab names it.
 */
#include <stdio.h>
#include <stdlib.h>

#define STORM_BYTES (16u << 20)
#define QUIET_BYTES (4u << 20)

static char *storm_site(void)
{
	return malloc(STORM_BYTES);
}

char *quiet_site(void)
{
	return malloc(QUIET_BYTES);
}

char *heap_site(void)
{
	return malloc(64 << 10);
}

int main(void)
{
	char *h[8];
	for (int i = 0; i < 8; i++) {
		h[i] = heap_site();
		if (!h[i])
			return 1;
		for (size_t off = 0; off < (64 << 10); off += 512)
			h[i][off] = 1;
	}
	char *p = storm_site();
	char *q = quiet_site();
	if (!p || !q)
		return 1;
	for (size_t off = 0; off < STORM_BYTES; off += 4096)
		p[off] = (char)(off >> 12);
	for (size_t off = 0; off < 100 * 4096; off += 4096)
		q[off + 4096] = 1;
	unsigned long sum = 0;
	for (size_t off = 0; off < STORM_BYTES; off += 4096)
		sum += (unsigned char)p[off];
	printf("checksum %lu\n", sum);
	free(p);
	free(q);
	for (int i = 0; i < 8; i++)
		free(h[i]);
	return 0;
}
