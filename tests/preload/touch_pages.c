/*
 * Touches known numbers of fresh pages of two large allocations, drops some
 * with MADV_DONTNEED and touches them again, then frees one before any scan
 * could see it.  Exact first-touch counts per site follow from the code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

/* 8 MiB from malloc (its own mapping): page 0 holds the chunk header, so pages 1..N are fresh. */
char *malloc_site(int n)
{
	char *p = malloc(8 << 20);
	char *base = (char *)((unsigned long)p & ~(unsigned long)(PAGE - 1));
	for (int i = 1; i <= n; i++)
		base[(long)i * PAGE + 100] = 1; /* writes */
	return p;
}

/* 4 MiB anonymous mapping: K pages, read and written alternately. */
char *mmap_site(int k)
{
	char *p = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile char sink = 0;
	for (int i = 0; i < k; i++) {
		if (i % 2)
			p[(long)i * PAGE] = 2;
		else
			sink += p[(long)i * PAGE]; /* a read fault maps the zero page: a first touch too */
	}
	(void)sink;
	return p;
}

/* Touched and freed at once: only the scan at free() can see these. */
void quick_site(int n)
{
	char *p = malloc(2 << 20);
	char *base = (char *)((unsigned long)p & ~(unsigned long)(PAGE - 1));
	for (int i = 1; i <= n; i++)
		base[(long)i * PAGE] = 3;
	free(p);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 100;
	int k = argc > 2 ? atoi(argv[2]) : 37;
	char *a = malloc_site(n);
	char *b = mmap_site(k);
	usleep(30000); /* let a periodic scan see them */
	/* Drop 10 touched pages of the mapping and touch them again: 10 more first touches. */
	madvise(b, 10 * PAGE, MADV_DONTNEED);
	for (int i = 0; i < 10; i++)
		b[(long)i * PAGE] = 4;
	quick_site(25);
	printf("touched %d + %d + 10 + 25 pages\n", n, k);
	free(a);
	munmap(b, 4 << 20);
	return 0;
}
