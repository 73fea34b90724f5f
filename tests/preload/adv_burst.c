/*
 * For the advisor: one site touched densely right after allocation (a
 * burst: populate it), one touched slowly page by page (fine as it is).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BURST_BYTES (32u << 20)
#define SLOW_BYTES (4u << 20)

char *burst_site(void)
{
	char *p = malloc(BURST_BYTES);

	for (size_t off = 0; p && off < BURST_BYTES; off += 4096)
		p[off] = (char)(off >> 12);
	return p;
}

/* 1024 pages, one every 400 us: about 2500 pages/s, no burst. */
char *slow_site(void)
{
	struct timespec gap = {0, 400000};
	char *p = malloc(SLOW_BYTES);

	for (size_t off = 0; p && off < SLOW_BYTES; off += 4096) {
		p[off] = 1;
		nanosleep(&gap, NULL);
	}
	return p;
}

int main(void)
{
	char *b = burst_site(), *s = slow_site();
	unsigned long sum = 0;

	if (!b || !s)
		return 1;
	for (size_t off = 0; off < BURST_BYTES; off += 4096)
		sum += (unsigned char)b[off];
	for (size_t off = 0; off < SLOW_BYTES; off += 4096)
		sum += (unsigned char)s[off];
	printf("checksum %lu\n", sum);
	free(b);
	free(s);
	return 0;
}
