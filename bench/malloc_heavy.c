/* 20 million malloc/free pairs of 16-216 bytes through two call levels (issue 8's workload). */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static void *alloc_leaf(size_t n)
{
	return malloc(n);
}

__attribute__((noinline)) static void *alloc_mid(size_t n)
{
	return alloc_leaf(n);
}

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? atol(argv[1]) : 20000000L;
	unsigned long sum = 0;
	for (long i = 0; i < pairs; i++) {
		size_t n = 16 + (size_t)(i % 201);
		char *p = alloc_mid(n);
		p[0] = (char)i;
		sum += (unsigned char)p[0];
		free(p);
	}
	printf("%lu\n", sum);
	return 0;
}
