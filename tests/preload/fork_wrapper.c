/*
 * Forked children that reach one allocation wrapper from two callers at
 * the same stack depth, taking turns: child k calls it through caller_a
 * when k is even, caller_b when odd.  The wrapper's return address and
 * stack pointer are the same in every child (a site cache key), the sites
 * are not; the parent never calls it.  Each child's one small block must
 * be charged to its own caller, whatever a sibling saw before it.
 * usage: fork_wrapper N         N children, one after the other
 *        fork_wrapper N deep    the same through two callers the paths share
 *                               (deep_a and deep_b -> mid_two -> mid_one ->
 *                               wrapped_alloc): the paths part at the third caller
 *        fork_wrapper N big     blocks of 64 KiB, each a record of its own (its
 *                               site unwound, or a sibling's frames for the same
 *                               whole chain): the parent takes one through the
 *                               wrapper first, from a third caller
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static size_t big_size; /* 0: the small blocks above */

__attribute__((noinline)) void *big_a(void)
{
	void *p = wrapped_alloc(big_size);
	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noinline)) void *big_b(void)
{
	void *p = wrapped_alloc(big_size);
	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noinline)) void *big_parent(void)
{
	void *p = wrapped_alloc(big_size);
	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noinline)) void *mid_one(void)
{
	void *p = wrapped_alloc(48);
	__asm__ volatile("" ::: "memory"); /* no tail call: this frame stays */
	return p;
}

__attribute__((noinline)) void *mid_two(void)
{
	void *p = mid_one();
	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noinline)) void *deep_a(void)
{
	void *p = mid_two();
	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noinline)) void *deep_b(void)
{
	void *p = mid_two();
	__asm__ volatile("" ::: "memory");
	return p;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 6;
	int deep = argc > 2 && !strcmp(argv[2], "deep");
	if (argc > 2 && !strcmp(argv[2], "big")) {
		big_size = 64 * 1024;
		keep = big_parent();
	}

	for (int k = 0; k < n; k++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			if (big_size)
				keep = (k & 1) ? big_b() : big_a();
			else if (deep)
				keep = (k & 1) ? deep_b() : deep_a();
			else
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
