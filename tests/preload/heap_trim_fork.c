/*
 * The heap given back to the kernel and grown again between forks: three
 * rounds, each carving page-aligned blocks of 16 KiB from the brk heap
 * (round_site: 32, then 24, then 16), forking, and writing a byte on every page of them in both
 * the child and the parent while the child lives; then the parent frees
 * them all and trims the heap.  From the second round on the heap's
 * mapping is new to the kernel (no longer registered for write-protect).
 * Each process prints the kernel's count of its writes' faults (getrusage)
 * on stderr, "faults child N K", "faults parent N K", and the pages they
 * wrote, "pages child N P" (every page of the blocks held at the fork: each
 * write a copy), and the pages of the blocks' headers, which the parent's
 * frees write, "pages parent-headers N H"; and the parent's count of all its faults from its first
 * fork's return to its end (its writes, its frees, the trims, the next
 * rounds' blocks): "faults parent-after-fork K".
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "minflt.h"

#define BLOCKS 32
#define BLOCK (16 << 10)

/* Page-aligned: every page written is the block's alone (none shared with another site's carving). */
__attribute__((noinline)) static char *round_site(void)
{
	void *p;
	if (posix_memalign(&p, 4096, BLOCK))
		return NULL;
	memset(p, 1, BLOCK);
	return p;
}

/*
 * A byte written on every page of the blocks (v), or only read (0): the
 * faults of the writes, the kernel's count.  A read pass first, so that
 * this code's page and the stack's are faulted in before the count (a
 * forked child's text is not copied at the fork: it faults each page in).
 */
static long touch_all(char **b, int n, char v)
{
	volatile char sink = 0;
	long f0 = minflt();
	for (int i = 0; i < n; i++)
		for (int j = 0; j < BLOCK; j += 4096) {
			if (v)
				b[i][j] = v;
			else
				sink += b[i][j];
		}
	return minflt() - f0;
}

/* A line on stdout without stdio's buffer: no heap block of its own (its pages would be copies too). */
static void say(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && write(1, line, (size_t)n) < 0)
		_exit(2);
}

/* The distinct pages touch_all writes. */
static long pages_of(char **b, int n)
{
	long pages = 0;
	unsigned long last = 0;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < BLOCK; j += 4096) {
			unsigned long pg = (unsigned long)(b[i] + j) >> 12;
			pages += pg != last;
			last = pg;
		}
	return pages;
}

/* The pages of the blocks' headers (16 bytes before each, in the page before it), none a block's. */
static long header_pages(char **b, int n)
{
	long pages = 0;
	unsigned long last = 0;
	for (int i = 0; i < n; i++) {
		unsigned long pg = (unsigned long)(b[i] - 16) >> 12;
		pages += pg != last;
		last = pg;
	}
	return pages;
}

static void write_all(char **b, int n, char v, const char *who, int round)
{
	touch_all(b, n, 0);
	long k = touch_all(b, n, v);
	fprintf(stderr, "faults %s %d %ld\npages %s %d %ld\n", who, round, k, who, round, pages_of(b, n));
}

int main(void)
{
	mallopt(M_MMAP_THRESHOLD, 64 << 20); /* the blocks come from the heap */
	mallopt(M_TRIM_THRESHOLD, 64 << 10);
	long f0 = 0;
	for (int round = 0; round < 3; round++) {
		/* fewer each round: the heap grows again to less than it was registered for, not more */
		int n = BLOCKS - 8 * round;
		char *b[BLOCKS];
		for (int i = 0; i < n; i++)
			if (!(b[i] = round_site()))
				return 1;
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			write_all(b, n, 2, "child", round);
			say("round %d: the child rewrote its blocks\n", round);
			_exit(0);
		}
		if (round == 0)
			f0 = minflt();
		write_all(b, n, 3, "parent", round);
		fprintf(stderr, "pages parent-headers %d %ld\n", round, header_pages(b, n));
		int st;
		waitpid(pid, &st, 0);
		for (int i = n - 1; i >= 0; i--)
			free(b[i]); /* each block's header, in the page before it: written, a copy too */
		malloc_trim(0);
		say("round %d: the parent rewrote its blocks and gave them back\n", round);
	}
	fprintf(stderr, "faults parent-after-fork %ld\n", minflt() - f0);
	return 0;
}
