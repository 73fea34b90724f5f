/*
 * One allocation wrapper called from two callers at the same stack depth:
 * the wrapper's return address and stack pointer are the same for both,
 * but the sites are not.  Large blocks (records of their own) must keep
 * them apart, every time.
 */
#include <stdio.h>
#include <stdlib.h>

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

int main(void)
{
	for (int i = 0; i < 3; i++) {
		free(site_one());
		free(site_two());
	}
	puts("done");
	return 0;
}
