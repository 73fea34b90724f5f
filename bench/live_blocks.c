/*
 * N blocks of 256 KiB kept live (each a mapping of its own), one page touched
 * in each (issue 21: the shim's passes grew with every live mapping).
 * usage: live_blocks [N]
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 4000;
	char **v = malloc(sizeof(char *) * (size_t)n);
	if (!v)
		return 1;
	for (int i = 0; i < n; i++) {
		v[i] = malloc(256 << 10);
		if (!v[i])
			return 1;
		v[i][100] = 1;
	}
	long s = 0;
	for (int i = 0; i < n; i++)
		s += v[i][100];
	printf("%ld\n", s);
	return 0;
}
