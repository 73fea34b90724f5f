/*
 * A multi-threaded allocator storm: four threads each allocate a 16 MiB
 * buffer and write every page of it, while also making many small
 * allocations in their own malloc arenas.  The faults of all four threads
 * land at one site (worker_buffer_site: 4 x 4095 first touches, each
 * buffer's first page was written by malloc), the small blocks at another
 * (worker_small_site), whose pages are the arenas' heap pages.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4
#define BUFFER_BYTES (16ul << 20)
#define SMALL 20000
#define PAGE 4096ul

struct work {
	int id;
	unsigned long sum;
	void **small;
	char *buffer;
};

/* Each thread's large buffer, written page by page. */
char *worker_buffer_site(int id)
{
	char *p = malloc(BUFFER_BYTES);
	if (p)
		for (size_t off = 0; off < BUFFER_BYTES; off += PAGE)
			p[off] = (char)(id + off / PAGE);
	return p;
}

/* Each thread's small blocks: 20000 of 100 bytes, written once. */
void worker_small_site(void **keep, int id)
{
	for (int i = 0; i < SMALL; i++) {
		keep[i] = malloc(100);
		if (keep[i])
			*(int *)keep[i] = id + i;
	}
}

static void *worker(void *arg)
{
	struct work *w = arg;
	char *p = worker_buffer_site(w->id);
	worker_small_site(w->small, w->id);
	w->buffer = p; /* freed by main after the join: no thread's buffer reuses another's pages */
	if (!p)
		return NULL;
	for (size_t off = 0; off < BUFFER_BYTES; off += PAGE)
		w->sum += (unsigned char)p[off];
	for (int i = 0; i < SMALL; i++)
		if (w->small[i])
			w->sum += (unsigned)*(int *)w->small[i];
	return NULL;
}

int main(void)
{
	static void *small[THREADS][SMALL];
	struct work w[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct work){.id = i, .small = small[i]};
		if (pthread_create(&th[i], NULL, worker, &w[i]))
			return 1;
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		printf("thread %d: %lu MiB buffer and %d small blocks, checksum %lu\n", i, BUFFER_BYTES >> 20, SMALL,
		       w[i].sum);
		free(w[i].buffer);
		for (int j = 0; j < SMALL; j++)
			free(small[i][j]);
	}
	return 0;
}
