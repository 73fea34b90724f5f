/* Many threads allocating at one site and freeing across threads: exact total count. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define NTHREADS 8
#define PER_THREAD 20000

static void *blocks[NTHREADS][PER_THREAD];

void thread_site(int t)
{
	for (int i = 0; i < PER_THREAD; i++)
		blocks[t][i] = malloc(32 + (size_t)(i % 64));
}

static void *worker(void *arg)
{
	int t = (int)(long)arg;
	thread_site(t);
	return NULL;
}

int main(void)
{
	pthread_t th[NTHREADS];
	for (long t = 0; t < NTHREADS; t++)
		pthread_create(&th[t], NULL, worker, (void *)t);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	unsigned long ok = 0;
	for (int t = 0; t < NTHREADS; t++)
		for (int i = 0; i < PER_THREAD; i++) {
			ok += blocks[t][i] != NULL;
			free(blocks[(t + 1) % NTHREADS][i]);
		}
	printf("%lu blocks\n", ok);
	return 0;
}
