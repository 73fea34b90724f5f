/* malloc from three distinct functions with known counts and sizes; a big block; output to compare. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *keep[64];
static int nkeep;

void site_alpha(void)
{
	for (int i = 0; i < 3; i++)
		keep[nkeep++] = malloc(100);
}

void site_beta(void)
{
	for (int i = 0; i < 5; i++)
		keep[nkeep++] = malloc(200);
}

void site_gamma(void)
{
	for (int i = 0; i < 7; i++)
		keep[nkeep++] = calloc(10, 30);
}

void site_big(void)
{
	char *p = malloc(1 << 20); /* a block with its own ALLOC record */
	memset(p, 1, 4096);
	keep[nkeep++] = p;
}

int main(void)
{
	site_alpha();
	site_beta();
	site_gamma();
	site_big();
	unsigned long sum = 0;
	for (int i = 0; i < nkeep; i++)
		sum += (unsigned long)(keep[i] != NULL);
	printf("allocated %lu blocks\n", sum);
	for (int i = 0; i < nkeep; i++)
		free(keep[i]);
	return 3; /* an exit status the shim must pass on */
}
