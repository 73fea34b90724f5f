/*
 * A program that starts itself again with posix_spawn (glibc: a vfork
 * child that execs at once, as Python's spawn does): the child, with the
 * argument "child", maps 200 pages at child_site and writes them.  Its
 * image before the exec has its parent's executable and runs no shim.
 */
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096l

extern char **environ;

char *child_site(long len)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "child")) {
		char *p = child_site(200 * PAGE);
		if (p == MAP_FAILED)
			return 2;
		madvise(p, 200 * PAGE, MADV_NOHUGEPAGE);
		for (long i = 0; i < 200 * PAGE; i += PAGE)
			p[i] = 1;
		printf("child wrote 200 pages\n");
		return 0;
	}
	char *args[] = {argv[0], "child", NULL};
	pid_t pid;
	fflush(stdout);
	if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ))
		return 2;
	int st;
	waitpid(pid, &st, 0);
	printf("parent: child exit %d\n", WEXITSTATUS(st));
	return 0;
}
