/*
 * Two sites' blocks in jemalloc's extents (linked with Debian's
 * libjemalloc-dev, -O2 -g): small_records allocates 1 MiB of 64-byte blocks,
 * mid_records 10 MiB of 160-byte ones (more than jemalloc mapped before
 * the shim started), each class in slabs of its own inside the
 * extents jemalloc maps; both write their blocks, then a forked child
 * rewrites mid_records' blocks only.  Each site must be charged its own
 * pages' faults, not the call that made jemalloc map the extent.  On
 * stderr: the kernel's own count of each phase's faults (getrusage), and
 * how many distinct pages each site's blocks lie on.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "minflt.h"

#define SMALL_N 16384
#define MID_N 65536

static char *small[SMALL_N], *mid[MID_N];

__attribute__((noinline)) void small_records(void)
{
	for (int i = 0; i < SMALL_N; i++)
		if (!(small[i] = malloc(64))) /* SMALL_LINE */
			exit(1);
}

__attribute__((noinline)) void mid_records(void)
{
	for (int i = 0; i < MID_N; i++)
		if (!(mid[i] = malloc(160))) /* MID_LINE */
			exit(1);
}

static int cmp(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* The distinct pages the blocks [v[i], v[i] + size) lie on. */
static long pages_of(char **v, int n, size_t size)
{
	static uintptr_t pg[2 * MID_N];
	int k = 0;
	for (int i = 0; i < n; i++) {
		pg[k++] = (uintptr_t)v[i] / 4096;
		pg[k++] = ((uintptr_t)v[i] + size - 1) / 4096;
	}
	qsort(pg, k, sizeof(*pg), cmp);
	long d = 0;
	for (int i = 0; i < k; i++)
		d += i == 0 || pg[i] != pg[i - 1];
	return d;
}

int main(void)
{
	small_records();
	mid_records();
	long f0 = minflt();
	for (int i = 0; i < SMALL_N; i++)
		memset(small[i], 's', 64);
	long f1 = minflt();
	for (int i = 0; i < MID_N; i++)
		memset(mid[i], 'm', 160);
	long f2 = minflt();
	fprintf(stderr, "faults small %ld\nfaults mid %ld\n", f1 - f0, f2 - f1);
	fprintf(stderr, "pages small %ld\npages mid %ld\n", pages_of(small, SMALL_N, 64), pages_of(mid, MID_N, 160));
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		long c0 = minflt();
		for (int i = 0; i < MID_N; i++)
			mid[i][0] = 'c';
		fprintf(stderr, "faults child mid %ld\n", minflt() - c0);
		_exit(0);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 1;
	return 0;
}
