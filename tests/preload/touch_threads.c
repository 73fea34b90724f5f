/* A worker thread touches pages slowly: the scanner thread sees them over time, counts stay exact. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096
#define STEPS 8
#define PER_STEP 50

static char *area;

char *worker_site(void)
{
	return mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void *worker(void *arg)
{
	(void)arg;
	struct timespec ts = {0, 40 * 1000000L}; /* 40 ms: several scan intervals */
	for (int s = 0; s < STEPS; s++) {
		for (int i = 0; i < PER_STEP; i++)
			area[(long)(s * PER_STEP + i) * PAGE] = 1;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int main(void)
{
	area = worker_site();
	pthread_t th;
	pthread_create(&th, NULL, worker, NULL);
	pthread_join(th, NULL);
	printf("%d pages in %d steps\n", STEPS * PER_STEP, STEPS);
	munmap(area, 16 << 20);
	return 0;
}
