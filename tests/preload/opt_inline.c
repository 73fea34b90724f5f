/*
 * A chain of static inline helpers, built as users build (-O2 -g): main
 * calls middle_load, which calls inner_alloc, which calls malloc; all of it
 * inlined into main.  The site's frames must be the whole chain, each with
 * its own line (eu-addr2line -i says the same), and its label inner_alloc.
 */
#include <stdio.h>
#include <stdlib.h>

#define BYTES (32u << 20)

static inline char *inner_alloc(size_t n)
{
	char *p = malloc(n); /* INNER_LINE */
	if (!p)
		exit(1);
	return p;
}

static inline char *middle_load(size_t n)
{
	char *p = inner_alloc(n); /* MIDDLE_LINE */
	for (size_t i = 0; i < n; i += 4096)
		p[i] = (char)i;
	return p;
}

int main(void)
{
	char *p = middle_load(BYTES); /* MAIN_LINE */
	unsigned sum = 0;
	for (size_t i = 0; i < BYTES; i += 4096)
		sum += (unsigned char)p[i];
	printf("sum %u\n", sum);
	free(p);
	return 0;
}
