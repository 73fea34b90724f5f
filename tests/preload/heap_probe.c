/*
 * Facts of this machine's malloc that heap page counts follow from, printed (run natively) for the
 * tests to derive their expectations from, never to assert:
 *   page P          the page size
 *   start S         where the main heap starts within its page
 *   first F         where the first block of a fresh main heap begins (its chunk), from the heap's
 *                   start: after glibc's tcache, whose size differs between glibc versions
 *   chunk N C       the chunk (block and header) a request of N bytes takes, for each N in argv
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *start = sbrk(0);
	char *p = malloc(64);
	long page = sysconf(_SC_PAGESIZE);

	if (!p)
		return 1;
	printf("page %ld\nstart %ld\n", page, (long)((unsigned long)start % (unsigned long)page));
	/* the chunk header is two words before the block */
	printf("first %ld\n", (long)(p - 2 * sizeof(size_t) - start));
	for (int i = 1; i < argc; i++) {
		void *q = malloc((size_t)atol(argv[i]));
		printf("chunk %s %zu\n", argv[i], malloc_usable_size(q) + sizeof(size_t));
	}
	return 0;
}
