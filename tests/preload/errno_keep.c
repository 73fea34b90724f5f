/* errno survives the shim: set before each call at a fresh call site (the shim's slow path), checked after. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define CHECK(call)                                                                        \
	do {                                                                               \
		errno = 4242;                                                              \
		call;                                                                      \
		if (errno != 4242) {                                                       \
			printf("errno changed by %s: %d\n", #call, errno);                \
			bad++;                                                             \
		}                                                                          \
	} while (0)

int main(void)
{
	int bad = 0;
	void *a, *b, *c, *d, *m;
	CHECK(a = malloc(10));
	CHECK(b = malloc(100000));
	CHECK(c = calloc(3, 5000));
	CHECK(d = realloc(a, 20000));
	CHECK(m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	CHECK(munmap(m, 1 << 20));
	CHECK(free(b));
	CHECK(free(c));
	CHECK(free(d));
	for (int i = 0; i < 3000; i++) /* enough records to take new log blocks */
		CHECK(free(malloc(5000 + (size_t)i)));
	printf(bad ? "errno changed\n" : "errno kept\n");
	return bad != 0;
}
