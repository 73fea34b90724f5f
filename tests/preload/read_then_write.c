/*
 * Reads N untouched pages of a mapping, then writes each, and prints the
 * minor faults the kernel counted for the loops (getrusage): the program's
 * own fault count, which the shim must leave as it is natively.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "minflt.h"

__attribute__((noinline)) static char *read_write_site(size_t n)
{
	char *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(1);
	madvise(p, n * 4096, MADV_NOHUGEPAGE);
	return p;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)atol(argv[1]) : 1000;
	char *p = read_write_site(n);
	long sum = 0, before = minflt();
	for (size_t i = 0; i < n; i++)
		sum += *(volatile char *)(p + i * 4096);
	for (size_t i = 0; i < n; i++)
		p[i * 4096] = 1;
	long faults = minflt() - before;
	printf("faults %ld sum %ld\n", faults, sum);
	return 0;
}
