/*
 * A program whose library allocates and fills memory in its constructor, before the shim's
 * constructor runs (tests/preload/lib/ctorearly.c): 64 pages it mapped itself, then a 1 MiB
 * block from malloc.  The output is the same natively and under the shim.
 */
#include <stdio.h>

unsigned long ctorearly_sum(void);

int main(void)
{
	printf("constructor wrote %lu\n", ctorearly_sum());
	return 0;
}
