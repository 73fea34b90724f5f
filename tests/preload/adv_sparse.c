/* For the advisor: 64 MiB allocated, one page of each MiB touched (sparse: never populate it). */
#include <stdio.h>
#include <stdlib.h>

#define SPARSE_BYTES (64u << 20)

char *sparse_site(void)
{
	char *p = malloc(SPARSE_BYTES);

	for (size_t off = 0; p && off < SPARSE_BYTES; off += 1u << 20)
		p[off] = 7;
	return p;
}

int main(void)
{
	char *p = sparse_site();
	unsigned long sum = 0;

	if (!p)
		return 1;
	for (size_t off = 0; off < SPARSE_BYTES; off += 1u << 20)
		sum += (unsigned char)p[off];
	printf("touched %u of %u MiB, checksum %lu\n", SPARSE_BYTES >> 20, SPARSE_BYTES >> 20, sum);
	free(p);
	return 0;
}
