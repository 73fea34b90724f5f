/*
 * For the advisor: 16 MiB mapped and filled in a burst, then kept for more
 * than a second (large, dense, long-lived: hugepage, and populate).
 */
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#define HUGE_BYTES (16u << 20)

char *huge_site(void)
{
	char *p = mmap(NULL, HUGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	for (size_t off = 0; off < HUGE_BYTES; off += 4096)
		p[off] = 3;
	return p;
}

int main(void)
{
	struct timespec life = {1, 200000000};
	char *p = huge_site();
	unsigned long sum = 0;

	if (!p)
		return 1;
	nanosleep(&life, NULL);
	for (size_t off = 0; off < HUGE_BYTES; off += 4096)
		sum += (unsigned char)p[off];
	printf("kept %u MiB for 1.2 s, checksum %lu\n", HUGE_BYTES >> 20, sum);
	munmap(p, HUGE_BYTES);
	return 0;
}
