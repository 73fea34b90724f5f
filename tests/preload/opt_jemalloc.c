/*
 * A program linked with jemalloc (Debian's libjemalloc-dev), -O2 -g: its
 * malloc is jemalloc's, which maps memory with its own mmap calls.  The
 * site's label must be fill_buffer, with no jemalloc or shim frame in the
 * stack.
 */
#include <stdio.h>
#include <stdlib.h>

#define BYTES (48u << 20)

__attribute__((noinline)) char *fill_buffer(size_t n)
{
	char *p = malloc(n); /* FILL_LINE */
	if (!p)
		exit(1);
	for (size_t i = 0; i < n; i += 4096)
		p[i] = (char)(i >> 12);
	return p;
}

int main(void)
{
	char *p = fill_buffer(BYTES);
	printf("%d %d\n", p[4096 * 7], p[BYTES - 4096]);
	free(p);
	return 0;
}
