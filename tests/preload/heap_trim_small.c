/*
 * Fills 1 MiB of heap with small blocks (4,000 bytes each: no record of
 * their own), writes them, and frees them in order, 20 times: freeing the
 * last one, next to the top, merges them all into the top and glibc trims
 * the heap inside that free, so every round's pages are new to the kernel.
 * A round takes far less than a scan interval: the pages a round touched
 * are given back before any periodic scan could see them (gcc's cc1 lost
 * a tenth of its first touches that way).  Prints the kernel's count of the
 * rounds' faults (getrusage) on stderr.
 *
 * usage: heap_trim_small [SIZE [threaded]]: blocks of SIZE bytes (default
 * 4,000), as many as make 1 MiB.  At 200 bytes they are small enough for
 * glibc's tcache bins: the first 7 of the size freed go there, the rest take
 * the merging path, and the last free trims the heap all the same.
 * `threaded`: a thread is started and joined first (the program is no
 * longer single-threaded to glibc), the rounds run in the main thread.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "minflt.h"

#define HEAP_BYTES (1 << 20)
#define ROUNDS 20

__attribute__((noinline)) static char *small_site(size_t n)
{
	char *p = malloc(n);
	if (p)
		memset(p, 1, n);
	return p;
}

static void *other_thread(void *arg)
{
	free(malloc(64));
	return arg;
}

int main(int argc, char **argv)
{
	pthread_t th;
	if (argc > 2 && !strcmp(argv[2], "threaded") &&
	    (pthread_create(&th, NULL, other_thread, NULL) || pthread_join(th, NULL)))
		return 1;
	size_t size = argc > 1 ? (size_t)atol(argv[1]) : 4000;
	if (size < 16 || size > HEAP_BYTES)
		return 2;
	int blocks = (int)(HEAP_BYTES / size);
	char **v = calloc((size_t)blocks, sizeof(*v));
	if (!v)
		return 1;
	mallopt(M_TRIM_THRESHOLD, 128 << 10); /* glibc's default, whatever the environment says */
	long f0 = minflt();
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < blocks; i++)
			if (!(v[i] = small_site(size)))
				return 1;
		for (int i = 0; i < blocks; i++)
			free(v[i]);
	}
	fprintf(stderr, "faults %ld\n", minflt() - f0);
	printf("%d rounds of %d small blocks\n", ROUNDS, blocks);
	return 0;
}
