/* THREADS threads each touch every page of their own fresh MiB-sized malloc block (the storm, threaded). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static size_t bytes;

static void *storm(void *arg)
{
	char *p = malloc(bytes);
	if (!p)
		return NULL;
	for (size_t off = 0; off < bytes; off += 4096)
		p[off] = (char)off;
	unsigned long sum = (unsigned long)(uintptr_t)arg;
	for (size_t off = 0; off < bytes; off += 4096 * 64)
		sum += (unsigned char)p[off];
	free(p);
	return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv)
{
	bytes = (size_t)(argc > 1 ? atol(argv[1]) : 64) << 20;
	int n = argc > 2 ? atoi(argv[2]) : 2;
	pthread_t th[64];
	if (n < 1 || n > 64)
		return 1;
	for (int i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, storm, (void *)(uintptr_t)i))
			return 1;
	unsigned long sum = 0;
	for (int i = 0; i < n; i++) {
		void *r;
		pthread_join(th[i], &r);
		sum += (unsigned long)(uintptr_t)r;
	}
	printf("%lu\n", sum);
	return 0;
}
