/*
 * For the advisor: 16 MiB filled, then a fork whose child rewrites every
 * page (4096 copy-on-write faults per fork: allocate after fork instead).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define COW_BYTES (16u << 20)

char *cow_site(void)
{
	char *p = malloc(COW_BYTES);

	for (size_t off = 0; p && off < COW_BYTES; off += 4096)
		p[off] = 1;
	return p;
}

int main(void)
{
	char *p = cow_site();
	int st = 0;

	if (!p)
		return 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		for (size_t off = 0; off < COW_BYTES; off += 4096)
			p[off] = 2;
		_exit(p[4096] == 2 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	printf("child rewrote %u MiB, status %d\n", COW_BYTES >> 20, WEXITSTATUS(st));
	free(p);
	return 0;
}
