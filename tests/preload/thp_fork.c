/*
 * Huge-page memory across fork: the parent keeps its huge pages when it
 * writes after the child is gone (natively the kernel reuses them in place),
 * and says whether it still has them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smaps.h"

#define SIZE (32ul << 20)
#define HUGE (2ul << 20)

char *huge_fork_site(void)
{
	char *raw = mmap(NULL, SIZE + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p = (char *)(((unsigned long)raw + HUGE - 1) & ~(HUGE - 1));
	madvise(p, SIZE, MADV_HUGEPAGE);
	return p;
}

int main(void)
{
	char *p = huge_fork_site();
	for (unsigned long off = 0; off < SIZE; off += 4096)
		p[off] = 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	for (unsigned long off = 0; off < SIZE; off += 4096)
		p[off] = 2; /* no longer shared: reused in place natively */
	printf("huge pages after fork and writes: %s\n", anon_huge_kb() >= (long)(SIZE / 2 / 1024) ? "yes" : "no");
	return 0;
}
