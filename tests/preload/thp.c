/*
 * A MADV_HUGEPAGE region touched whole: with THP enabled ("always" or
 * "madvise") it is backed by huge pages natively, and must be under the
 * shim too (fast mode registers nothing).  Prints whether it is, and on
 * stderr the faults the kernel took for the touch (getrusage): one per huge
 * page where it gave them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "minflt.h"
#include "smaps.h"

#define SIZE (64ul << 20)
#define HUGE (2ul << 20)

char *huge_site(void)
{
	char *raw = mmap(NULL, SIZE + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p = (char *)(((unsigned long)raw + HUGE - 1) & ~(HUGE - 1)); /* 2 MiB aligned */
	madvise(p, SIZE, MADV_HUGEPAGE);
	return p;
}

int main(void)
{
	char *p = huge_site();
	long before = minflt();
	for (unsigned long off = 0; off < SIZE; off += 4096)
		p[off] = 1;
	fprintf(stderr, "faults %ld\n", minflt() - before);
	long kb = anon_huge_kb();
	printf("huge pages: %s\n", kb >= (long)(SIZE / 2 / 1024) ? "yes" : "no");
	return 0;
}
