/*
 * Fork a process with MiB touched; each of CHILDREN children (run at once) writes 10% of the pages
 * (issue 8's fork workload: fork_cow 1024).  stderr gets "phase SECONDS": the time from just
 * before the first fork to the last child's end, i.e. fork plus the children's writes.
 * usage: fork_cow [MiB [CHILDREN]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t bytes = (size_t)(argc > 1 ? atol(argv[1]) : 1024) << 20;
	int children = argc > 2 ? atoi(argv[2]) : 1;
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || children < 1)
		return 1;
	madvise(p, bytes, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < bytes; off += 4096)
		p[off] = 1;
	double t0 = now();
	for (int c = 0; c < children; c++) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			for (size_t off = 0; off < bytes; off += 4096 * 10)
				p[off] = 2;
			_exit(0);
		}
	}
	int st, bad = 0;
	for (int c = 0; c < children; c++)
		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			bad = 1;
	fprintf(stderr, "phase %.6f\n", now() - t0);
	printf("%d\n", bad);
	return bad;
}
