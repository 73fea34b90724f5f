/*
 * A C library that Python calls through ctypes, which releases the GIL
 * around the call: its allocations are made by a thread that runs Python
 * but holds no GIL, so their stacks carry no Python frame.
 */
#include <stdlib.h>
#include <string.h>

long churn(int rounds, long size)
{
	long sum = 0;
	for (int i = 0; i < rounds; i++) {
		unsigned char *p = malloc((size_t)size); /* CHURN_LINE */
		if (!p)
			return -1;
		memset(p, i & 0x7f, (size_t)size);
		sum += p[size / 2];
		free(p);
		free(malloc(64));
	}
	return sum;
}
