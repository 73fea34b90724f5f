/*
 * 20 million malloc/free pairs of 16-216 bytes through two call levels (issue 8's workload).
 * usage: malloc_heavy [PAIRS [BASE]]: sizes BASE to BASE+200 (default 16); with BASE 4096 every
 * block is large enough for the shim to log it (the analyzer's 10-million-event log).
 */
#include <stdio.h>
#include <stdlib.h>

/* The empty asm after each call keeps it a real call: -O2 would make both tail calls (jumps), and
 * the stack would show main alone. */
__attribute__((noinline)) static void *alloc_leaf(size_t n)
{
	void *p = malloc(n);
	__asm__ volatile("" ::: "memory");
	return p;
}

__attribute__((noinline)) static void *alloc_mid(size_t n)
{
	void *p = alloc_leaf(n);
	__asm__ volatile("" ::: "memory");
	return p;
}

int main(int argc, char **argv)
{
	long pairs = argc > 1 ? atol(argv[1]) : 20000000L;
	size_t base = argc > 2 ? (size_t)atol(argv[2]) : 16;
	unsigned long sum = 0;
	for (long i = 0; i < pairs; i++) {
		size_t n = base + (size_t)(i % 201);
		char *p = alloc_mid(n);
		p[0] = (char)i;
		sum += (unsigned char)p[0];
		free(p);
	}
	printf("%lu\n", sum);
	return 0;
}
