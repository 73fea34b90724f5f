/*
 * Copy-on-write after fork, counted in the process that writes: the child
 * writes 7 pages present at the fork (and reads 3: no copy) and touches 5
 * fresh ones; after the child ends, the parent writes 3 pages present at the
 * fork and touches 4 fresh ones.  A malloc'd block: the child writes 4 of its
 * pages present at the fork.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

char *cow_site(void)
{
	return mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

char *cow_malloc_site(void)
{
	return malloc(2 << 20);
}

static void write_pages(char *p, int from, int to)
{
	for (int i = from; i < to; i++)
		p[(long)i * PAGE + 8] = 1;
}

int main(void)
{
	char *p = cow_site();
	char *m = cow_malloc_site();
	char *mb = (char *)((unsigned long)m & ~(unsigned long)(PAGE - 1));
	write_pages(p, 0, 20);
	write_pages(mb, 1, 9);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		write_pages(p, 0, 7); /* 7 copies */
		volatile char sink = 0;
		for (int i = 7; i < 10; i++)
			sink += p[(long)i * PAGE]; /* reads: no copy */
		(void)sink;
		write_pages(p, 100, 105); /* 5 first touches */
		write_pages(mb, 1, 5);    /* 4 copies of the malloc'd block */
		printf("child: 7 + 4 copied, 5 fresh\n");
		exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	write_pages(p, 10, 13);   /* 3 first writes after the fork: counted though no longer shared */
	write_pages(p, 200, 204); /* 4 first touches */
	printf("parent: 3 written, 4 fresh\n");
	return 0;
}
