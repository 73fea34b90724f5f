/* Touch every page of a fresh 256 MiB malloc block once: the fault storm of issues 4 and 8. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	size_t bytes = (size_t)(argc > 1 ? atol(argv[1]) : 256) << 20;
	char *p = malloc(bytes);
	if (!p)
		return 1;
	for (size_t off = 0; off < bytes; off += 4096)
		p[off] = (char)off;
	unsigned long sum = 0;
	for (size_t off = 0; off < bytes; off += 4096 * 64)
		sum += (unsigned char)p[off];
	printf("%lu\n", sum);
	free(p);
	return 0;
}
