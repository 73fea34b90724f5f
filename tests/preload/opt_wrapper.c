/*
 * Allocation wrappers, built -O2 -g: xmalloc (a name every C programmer
 * knows, in the analyzer's built-in list) and pool_grab (the program's own,
 * named with --runtime-frames or PFSHIM_RUNTIME_FRAMES).  The sites'
 * labels must be their callers, load_table and load_index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fputs("out of memory\n", stderr);
		exit(1);
	}
	return p;
}

static size_t pool_bytes;

__attribute__((noinline)) void *pool_grab(size_t n)
{
	void *p = malloc(n);
	if (!p)
		exit(1);
	pool_bytes += n; /* after the call: no tail call, pool_grab stays in the stack */
	return p;
}

__attribute__((noinline)) char *load_table(size_t n)
{
	char *p = xmalloc(n); /* TABLE_LINE */
	memset(p, 1, n);
	return p;
}

__attribute__((noinline)) char *load_index(size_t n)
{
	char *p = pool_grab(n); /* INDEX_LINE */
	memset(p, 2, n);
	return p;
}

int main(void)
{
	char *t = load_table(24u << 20), *x = load_index(8u << 20);
	printf("%d %d %zu\n", t[12345], x[6789], pool_bytes);
	free(t);
	free(x);
	return 0;
}
