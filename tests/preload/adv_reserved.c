/*
 * A heap reserved and committed, as V8 and other runtimes make theirs: 16
 * MiB mapped without access (PROT_NONE) at reserve_site, opened with
 * mprotect and written at once, every page: a dense burst right after the
 * allocation, which a populate policy cannot remove (it acts at mmap, where
 * nothing can be populated yet).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define PAGE 4096l
#define LEN (16l << 20)

char *reserve_site(void)
{
	char *p = mmap(NULL, LEN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		exit(2);
	return p;
}

int main(void)
{
	char *p = reserve_site();
	if (mprotect(p, LEN, PROT_READ | PROT_WRITE))
		return 2;
	for (long i = 0; i < LEN; i += PAGE)
		p[i] = 1;
	printf("committed %ld pages\n", LEN / PAGE);
	return 0;
}
