/*
 * A fork-worker pool sharing a large read-mostly table (the pre-fork model
 * of web servers and of Python's multiprocessing): the parent builds a
 * 64 MiB lookup table, then forks four workers.  The workers read the whole
 * table, which they share with the parent page for page (no copy, no
 * fault), and each updates a hit counter on 8 pages of it: a write to a
 * shared page copies it, one copy-on-write fault per page, in the worker.
 * Each worker also fills a private 1 MiB result buffer: first touches, in
 * the worker.
 *
 * In the report: table_site with 16384 first touches in the parent (the
 * 16385 pages the block spans less the chunk header's) and 0 copy-on-write; in each worker,
 * table_site with 8 copy-on-write faults and no first touch, and
 * result_site with 256 first touches.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define TABLE_BYTES (64ul << 20)
#define RESULT_BYTES (1ul << 20)
#define WORKERS 4
#define COUNTER_PAGES 8
#define PAGE 4096ul
#define WORDS_PER_PAGE (PAGE / sizeof(unsigned long))

/* The shared table, built once before the workers are forked. */
unsigned long *table_site(void)
{
	unsigned long *t = malloc(TABLE_BYTES);
	if (t)
		for (size_t i = 0; i < TABLE_BYTES / sizeof(*t); i++)
			t[i] = i * 2654435761ul;
	return t;
}

/* A worker's private result buffer. */
unsigned char *result_site(void)
{
	return calloc(1, RESULT_BYTES);
}

/* A worker: reads every table entry, writes its results, counts hits in the table; exits with a digest. */
static int work(int id, unsigned long *t, int out)
{
	unsigned char *res = result_site();
	if (!res)
		return 1;
	unsigned long sum = 0;
	for (size_t i = 0; i < TABLE_BYTES / sizeof(*t); i++)
		sum += t[i] >> (id + 1);
	for (size_t i = 0; i < RESULT_BYTES; i++)
		res[i] = (unsigned char)(sum >> (i % 8));
	/* The read-mostly part: hit counters on pages 1 + id * 100 + k * 7 (page 0 holds malloc's header). */
	for (int k = 0; k < COUNTER_PAGES; k++)
		t[(1 + id * 100 + k * 7) * WORDS_PER_PAGE] += 1;
	unsigned long digest = sum;
	for (size_t i = 0; i < RESULT_BYTES; i += PAGE)
		digest += res[i];
	return write(out, &digest, sizeof(digest)) == sizeof(digest) ? 0 : 1;
}

int main(void)
{
	unsigned long *t = table_site();
	if (!t)
		return 1;
	int fds[WORKERS][2];
	pid_t pids[WORKERS];
	fflush(stdout);
	for (int i = 0; i < WORKERS; i++) {
		if (pipe(fds[i]))
			return 1;
		pids[i] = fork();
		if (pids[i] < 0)
			return 1;
		if (pids[i] == 0)
			_exit(work(i, t, fds[i][1]));
		close(fds[i][1]);
	}
	for (int i = 0; i < WORKERS; i++) {
		unsigned long digest = 0;
		int st;
		ssize_t n = read(fds[i][0], &digest, sizeof(digest));
		waitpid(pids[i], &st, 0);
		printf("worker %d: read %lu MiB of shared table, %d counter pages updated, digest %lx, exit %d\n", i,
		       TABLE_BYTES >> 20, COUNTER_PAGES, n == sizeof(digest) ? digest : 0, WEXITSTATUS(st));
	}
	unsigned long counters = 0;
	for (int id = 0; id < WORKERS; id++)
		for (int k = 0; k < COUNTER_PAGES; k++)
			counters += t[(1 + id * 100 + k * 7) * WORDS_PER_PAGE] - (1 + id * 100 + k * 7) * WORDS_PER_PAGE * 2654435761ul;
	printf("parent: its table unchanged by the workers' writes: %s\n", counters == 0 ? "yes" : "no");
	free(t);
	return 0;
}
