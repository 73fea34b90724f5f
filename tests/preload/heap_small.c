/*
 * 20,000 small blocks at one site carve fresh heap pages (a few hundred page
 * faults); a second site reuses freed blocks and carves nothing; a thread
 * allocates in its own arena.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 20000

static void *keep[N];

void small_site(void)
{
	for (int i = 0; i < N; i++) {
		keep[i] = malloc(64);
		memset(keep[i], 1, 64);
	}
}

void reuse_site(void)
{
	for (int i = 0; i < N; i += 2)
		free(keep[i]);
	for (int i = 0; i < N; i += 2) {
		keep[i] = malloc(64); /* fits in a freed chunk: no fresh page */
		memset(keep[i], 2, 64);
	}
}

void thread_heap_site(void **out)
{
	for (int i = 0; i < 1000; i++) {
		out[i] = malloc(200);
		memset(out[i], 3, 200);
	}
}

static void *worker(void *arg)
{
	thread_heap_site(arg);
	return NULL;
}

int main(void)
{
	small_site();
	reuse_site();
	static void *tkeep[1000];
	pthread_t th;
	pthread_create(&th, NULL, worker, tkeep);
	pthread_join(th, NULL);
	printf("%d blocks\n", N);
	return 0;
}
