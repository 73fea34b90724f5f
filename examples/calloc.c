/*
 * calloc of a large block, and what its zeroing costs in page faults.
 *
 * A large calloc (here 64 MiB, above glibc's mmap threshold) gets fresh
 * pages from mmap, which the kernel guarantees are zero: glibc does not
 * clear them, so calloc itself takes no fault and the program pays only for
 * the pages it uses.  malloc followed by memset(0) (what calloc is often
 * believed to do) writes every page: one fault per page, used or not.
 *
 * Each block below is used the same way: a quarter of its pages written.
 * The report shows calloc_site with 4095 first touches (the 4096 pages
 * used, less the chunk header's page that calloc wrote before returning)
 * and malloc_memset_site with 16384 (every page the block spans, the last
 * by 16 bytes, less the header's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_BYTES (64ul << 20)
#define PAGE 4096ul

/* A zeroed block the calloc way. */
char *calloc_site(void)
{
	return calloc(1, BLOCK_BYTES);
}

/* Clearing in its own function: the compiler may not turn malloc+memset into calloc. */
void clear(char *p, size_t n)
{
	memset(p, 0, n);
}

/* A zeroed block the malloc+memset way. */
char *malloc_memset_site(void)
{
	char *p = malloc(BLOCK_BYTES);
	if (p)
		clear(p, BLOCK_BYTES);
	return p;
}

/* The work: the first quarter of the block's pages written; returns the sum of what was there. */
static unsigned long use_quarter(char *p)
{
	unsigned long sum = 0;
	for (size_t off = 0; off < BLOCK_BYTES / 4; off += PAGE) {
		sum += (unsigned char)p[off];
		p[off] = 1;
	}
	return sum;
}

int main(void)
{
	char *a = calloc_site();
	char *b = malloc_memset_site();
	if (!a || !b)
		return 1;
	unsigned long sa = use_quarter(a), sb = use_quarter(b);
	printf("calloc_site: %lu MiB, %lu pages used, all zero: %s\n", BLOCK_BYTES >> 20, BLOCK_BYTES / 4 / PAGE,
	       sa == 0 ? "yes" : "no");
	printf("malloc_memset_site: %lu MiB, %lu pages used, all zero: %s\n", BLOCK_BYTES >> 20, BLOCK_BYTES / 4 / PAGE,
	       sb == 0 ? "yes" : "no");
	free(a);
	free(b);
	return 0;
}
