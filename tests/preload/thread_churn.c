/* Thousands of short-lived threads, each allocating at one site: states recycled, counts exact. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUNDS 500
#define WIDTH 4
#define PER_THREAD 10

void churn_site(void **keep)
{
	for (int i = 0; i < PER_THREAD; i++)
		keep[i] = malloc(40);
}

static void *worker(void *arg)
{
	(void)arg;
	void *keep[PER_THREAD];
	churn_site(keep);
	for (int i = 0; i < PER_THREAD; i++)
		free(keep[i]);
	return NULL;
}

int main(void)
{
	for (int r = 0; r < ROUNDS; r++) {
		pthread_t th[WIDTH];
		for (int i = 0; i < WIDTH; i++)
			if (pthread_create(&th[i], NULL, worker, NULL))
				return 1;
		for (int i = 0; i < WIDTH; i++)
			pthread_join(th[i], NULL);
	}
	printf("%d threads\n", ROUNDS * WIDTH);
	return 0;
}
