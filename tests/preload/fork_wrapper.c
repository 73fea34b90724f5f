/*
 * Forked children that reach one allocation wrapper from two callers at
 * the same stack depth, taking turns: child k calls it through caller_a
 * when k is even, caller_b when odd.  The wrapper's return address and
 * stack pointer are the same in every child (a site cache key), the sites
 * are not; the parent never calls it.  Each child's one small block must
 * be charged to its own caller, whatever a sibling saw before it.
 * usage: fork_wrapper N    N children, one after the other
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile keep;

__attribute__((noinline)) void *wrapped_alloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		abort();
	return p;
}

__attribute__((noinline)) void *caller_a(void)
{
	return wrapped_alloc(40);
}

__attribute__((noinline)) void *caller_b(void)
{
	return wrapped_alloc(40);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 6;

	for (int k = 0; k < n; k++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			keep = (k & 1) ? caller_b() : caller_a();
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
			return 1;
	}
	printf("%d children\n", n);
	return 0;
}
