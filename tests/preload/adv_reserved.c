/*
 * A heap reserved and committed, as V8 and other runtimes make theirs: 16
 * MiB mapped without access (PROT_NONE) at reserve_site, opened with
 * mprotect in two halves, each written at once: a dense burst right after
 * the allocation, which a populate policy can remove only as the memory is
 * opened (at mmap there is nothing to populate).  Then 4 MiB reserved at
 * dropped_site and unmapped unopened, and 4 MiB mapped again (likely at the
 * same place) at fresh_site, opened and written: a rule on dropped_site
 * must not act on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define PAGE 4096l
#define LEN (16l << 20)
#define SMALL (4l << 20)

#define RESERVE(len) mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)

__attribute__((noinline)) char *reserve_site(void)
{
	return RESERVE(LEN);
}

__attribute__((noinline)) char *dropped_site(void)
{
	return RESERVE(SMALL);
}

__attribute__((noinline)) char *fresh_site(void)
{
	return RESERVE(SMALL);
}

static void open_and_write(char *p, long len)
{
	if (p == MAP_FAILED || mprotect(p, len, PROT_READ | PROT_WRITE))
		exit(2);
	for (long i = 0; i < len; i += PAGE)
		p[i] = 1;
}

int main(void)
{
	char *p = reserve_site();
	open_and_write(p, LEN / 2);
	open_and_write(p + LEN / 2, LEN / 2);
	char *d = dropped_site();
	if (d == MAP_FAILED)
		return 2;
	munmap(d, SMALL);
	char *f = fresh_site();
	open_and_write(f, SMALL);
	printf("committed %ld + %ld pages\n", LEN / PAGE, SMALL / PAGE);
	return 0;
}
