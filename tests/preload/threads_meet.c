/*
 * Threads that touch the same pages at the same moment: THREADS threads
 * wait at a barrier, then each writes every page of one 32 MiB mapping
 * (meet_site) in the same order, none more than 4 pages ahead of the
 * next (where the machine runs them at once).  Where two fault on a page at once, each
 * takes a fault, and the kernel counts both.  The process's own count of
 * the faults taken from the barrier to the join (getrusage, all threads)
 * goes to stderr ("writes: N faults"); stdout is the same in every run.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define THREADS 2
#define PAGE 4096l
#define LEN (32l << 20)

static pthread_barrier_t start;
static char *mem;

char *meet_site(void)
{
	char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(2);
	madvise(p, LEN, MADV_NOHUGEPAGE); /* one fault a page, whatever THP's setting */
	return p;
}

static long faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

/* The pages each thread has written: the other waits when it runs ahead, so that they meet. */
static long done[THREADS];

static void *writer(void *arg)
{
	long me = (long)(intptr_t)arg, other = (me + 1) % THREADS;
	pthread_barrier_wait(&start);
	for (long n = 0; n < LEN / PAGE; n++) {
		for (int spin = 0; n > __atomic_load_n(&done[other], __ATOMIC_ACQUIRE) + 4; spin++)
			if (spin > 10000)
				sched_yield(); /* the other is not running: let it */
		__atomic_store_n(&mem[n * PAGE + me], 1, __ATOMIC_RELAXED);
		__atomic_store_n(&done[me], n + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

int main(void)
{
	pthread_t th[THREADS];
	mem = meet_site();
	pthread_barrier_init(&start, NULL, THREADS + 1);
	for (long k = 0; k < THREADS; k++)
		if (pthread_create(&th[k], NULL, writer, (void *)(intptr_t)k))
			return 2;
	long f0 = faults();
	pthread_barrier_wait(&start);
	for (int k = 0; k < THREADS; k++)
		pthread_join(th[k], NULL);
	fprintf(stderr, "writes: %ld faults\n", faults() - f0);
	printf("%d threads wrote %ld pages\n", THREADS, LEN / PAGE);
	return 0;
}
