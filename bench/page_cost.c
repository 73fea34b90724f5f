/*
 * What one 4 KiB page costs a process on this machine, the unit every process start and fork
 * of the shim is paid in (docs/performance.md, "What a page costs").  Each figure is the median
 * over 9 trials of 64 pages, in microseconds a page:
 *   fault        the first write to a fresh anonymous page
 *   populate     MADV_POPULATE_WRITE of fresh pages, and then the first read of one
 *   child read   a forked child's first read of a page its parent holds (no fault)
 *   copy         the child's first write of it (copy-on-write)
 *   parent write the parent's first write once the child has exited (no copy left to make)
 *   again        any later access
 * On a virtual machine with shadow page tables the first access of a page in a process costs a
 * fill even where no fault is taken: that is what populating cannot save.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGES 64
#define TRIALS 9
#define PAGE 4096

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static volatile char *fresh(void)
{
	char *p = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("page_cost: mmap");
		exit(1);
	}
	madvise(p, PAGES * PAGE, MADV_NOHUGEPAGE);
	return p;
}

/* Microseconds a page to read (write = 0) or write every page of p once, at offset off in each. */
static double touch(volatile char *p, int write, int off)
{
	int sum = 0;
	double t = now_us();
	for (int i = 0; i < PAGES; i++) {
		if (write)
			p[i * PAGE + off] = 1;
		else
			sum += p[i * PAGE + off];
	}
	double dt = now_us() - t;
	__asm__ volatile("" : : "r"(sum));
	return dt / PAGES;
}

enum { FAULT, POPULATE, POP_READ, CHILD_READ, COPY, PARENT_WRITE, AGAIN, N };
static const char *names[N] = {"fault", "populate", "read after populate", "child read", "copy",
			       "parent write after fork", "again"};

static void trial(double *x)
{
	volatile char *a = fresh(), *b = fresh();
	x[FAULT] = touch(a, 1, 0);
	x[AGAIN] = touch(a, 1, 64);
	double t = now_us();
	madvise((void *)b, PAGES * PAGE, MADV_POPULATE_WRITE);
	x[POPULATE] = (now_us() - t) / PAGES;
	x[POP_READ] = touch(b, 0, 0);
	int fd[2];
	if (pipe(fd))
		exit(1);
	pid_t c = fork();
	if (c == 0) {
		double y[2] = {touch(a, 0, 128), touch(a, 1, 192)};
		_exit(write(fd[1], y, sizeof y) == sizeof y ? 0 : 1);
	}
	double y[2] = {0, 0};
	if (c < 0 || read(fd[0], y, sizeof y) != sizeof y)
		exit(1);
	waitpid(c, NULL, 0);
	x[CHILD_READ] = y[0];
	x[COPY] = y[1];
	x[PARENT_WRITE] = touch(a, 1, 256);
	close(fd[0]);
	close(fd[1]);
	munmap((void *)a, PAGES * PAGE);
	munmap((void *)b, PAGES * PAGE);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(void)
{
	double x[TRIALS][N], col[TRIALS];
	for (int t = 0; t < TRIALS; t++)
		trial(x[t]);
	for (int k = 0; k < N; k++) {
		for (int t = 0; t < TRIALS; t++)
			col[t] = x[t][k];
		qsort(col, TRIALS, sizeof col[0], cmp);
		printf("    %-24s %7.2f us a page\n", names[k], col[TRIALS / 2]);
	}
	return 0;
}
