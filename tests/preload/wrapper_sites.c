/*
 * One allocation wrapper called from two callers at the same stack depth:
 * the wrapper's return address and stack pointer are the same for both,
 * but the sites are not.  Large blocks (records of their own) must keep
 * them apart, every time.
 * usage: wrapper_sites            3 large blocks from each caller
 *        wrapper_sites small N    N small blocks from each caller, the callers taking turns
 *        wrapper_sites deep N     the same through two more shared callers (deep_one and
 *                                 deep_two -> mid_b -> mid_a -> xmalloc): the stacks part
 *                                 at the wrapper's third caller
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		abort();
	return p;
}

__attribute__((noinline)) void *site_one(void)
{
	return xmalloc(1 << 20);
}

__attribute__((noinline)) void *site_two(void)
{
	return xmalloc(2 << 20);
}

__attribute__((noinline)) void *small_one(void)
{
	return xmalloc(24);
}

__attribute__((noinline)) void *small_two(void)
{
	return xmalloc(40);
}

__attribute__((noinline)) void *mid_a(size_t n)
{
	return xmalloc(n);
}

__attribute__((noinline)) void *mid_b(size_t n)
{
	return mid_a(n);
}

__attribute__((noinline)) void *deep_one(void)
{
	return mid_b(32);
}

__attribute__((noinline)) void *deep_two(void)
{
	return mid_b(48);
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "deep") == 0) {
		/* 2N blocks, each from a caller drawn (a fixed sequence): a check, every 4,096 hits, meets either */
		long n = atol(argv[2]), one = 0;
		unsigned x = 1;
		for (long i = 0; i < 2 * n; i++) {
			x = x * 1103515245u + 12345u;
			if (x >> 31) {
				free(deep_one());
				one++;
			} else {
				free(deep_two());
			}
		}
		printf("deep_one %ld deep_two %ld\n", one, 2 * n - one);
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "small") == 0) {
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++) {
			free(small_one());
			free(small_two());
		}
		puts("done");
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		free(site_one());
		free(site_two());
	}
	puts("done");
	return 0;
}
