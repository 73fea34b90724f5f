/*
 * Fork-then-exec and MADV_DONTFORK: a parent with 10,000 pages written
 * before a fork whose child execs /bin/true at once, then writes each page
 * again; and 2,000 pages marked MADV_DONTFORK (V8's heap is), written again
 * after a fork too.  Prints on stderr the faults the kernel took for each
 * write loop (getrusage): natively one per page after the exec (the fork
 * left them write-protected), none for the DONTFORK memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "minflt.h"

#define SHARED_PAGES 10000
#define DONTFORK_PAGES 2000

/* A macro, not a function: the sites are the functions below, whose names the test asks for. */
#define MAP_PAGES(p, n)                                                                           \
	do {                                                                                       \
		(p) = mmap(NULL, (size_t)(n) * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); \
		if ((p) == MAP_FAILED)                                                             \
			exit(1);                                                                   \
		madvise((p), (size_t)(n) * 4096, MADV_NOHUGEPAGE);                                 \
	} while (0)

__attribute__((noinline)) static char *shared_site(void)
{
	char *p;
	MAP_PAGES(p, SHARED_PAGES);
	return p;
}

__attribute__((noinline)) static char *dontfork_site(void)
{
	char *p;
	MAP_PAGES(p, DONTFORK_PAGES);
	madvise(p, (size_t)DONTFORK_PAGES * 4096, MADV_DONTFORK);
	return p;
}

static void write_all(char *p, long n, char v)
{
	for (long i = 0; i < n; i++)
		p[i * 4096] = v;
}

int main(void)
{
	char *a = shared_site(), *b = dontfork_site();
	write_all(a, SHARED_PAGES, 1);
	write_all(b, DONTFORK_PAGES, 1);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	long f0 = minflt();
	write_all(a, SHARED_PAGES, 2);
	long f1 = minflt();
	write_all(b, DONTFORK_PAGES, 2);
	long f2 = minflt();
	fprintf(stderr, "faults shared %ld\nfaults dontfork %ld\n", f1 - f0, f2 - f1);
	printf("child %d, wrote %d and %d pages again\n", WEXITSTATUS(st), SHARED_PAGES, DONTFORK_PAGES);
	return 0;
}
