/*
 * Grows the heap by 4 MiB and frees it, ten times: glibc trims the heap at
 * each free (the top past M_TRIM_THRESHOLD, inside free: no hook sees the
 * brk), so every round's pages are new to the kernel.  Prints the kernel's
 * count of the rounds' faults (getrusage) on stderr.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "minflt.h"

__attribute__((noinline)) static char *grow_site(size_t n)
{
	char *p = malloc(n);
	if (p)
		memset(p, 1, n);
	return p;
}

int main(void)
{
	mallopt(M_MMAP_THRESHOLD, 64 << 20); /* the blocks come from the heap */
	mallopt(M_TRIM_THRESHOLD, 128 << 10);
	long f0 = minflt();
	for (int i = 0; i < 10; i++)
		free(grow_site(4 << 20));
	fprintf(stderr, "faults %ld\n", minflt() - f0);
	printf("10 rounds of 4 MiB\n");
	return 0;
}
