/*
 * A program that prefaults its own memory: 4 MiB mapped at self_pop_site,
 * its first 16 pages written (16 faults), then the whole populated with
 * MADV_POPULATE_WRITE (no fault: the kernel makes the pages present without
 * an exception) and every page written (no fault).  stderr says whether the
 * kernel could populate ("populated" or "no MADV_POPULATE_WRITE").
 */
#include <stdio.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PAGE 4096l
#define LEN (4l << 20)

char *self_pop_site(void)
{
	return mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(void)
{
	char *p = self_pop_site();
	if (p == MAP_FAILED)
		return 2;
	madvise(p, LEN, MADV_NOHUGEPAGE); /* one fault a page, whatever THP's setting */
	for (long i = 0; i < 16 * PAGE; i += PAGE)
		p[i] = 1;
	fprintf(stderr, "%s\n", madvise(p, LEN, MADV_POPULATE_WRITE) ? "no MADV_POPULATE_WRITE" : "populated");
	for (long i = 0; i < LEN; i += PAGE)
		p[i] = 2;
	printf("%ld pages written\n", LEN / PAGE);
	return 0;
}
