/*
 * A program whose heap grew before the shim started: its .preinit_array (run before every
 * library's constructor, the shim's included) and its library's constructor (libctorheap, run
 * before the preloaded shim's) malloc enough to move brk.  Then main allocates at two sites:
 * reuse_site into chunks the library freed (pages present long before), fresh_site past
 * everything (fresh pages).  The output is the same natively and under the shim.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned long ctorheap_sum(void);

#define PRE_N 3000
#define REUSE_N 2000
#define FRESH_N 20000

static char *pre[PRE_N];

/* Before any constructor: 3000 blocks of 200 B (about 620 KiB of heap). */
static void preinit_heap(int argc, char **argv, char **envp)
{
	(void)argc, (void)argv, (void)envp;
	for (int i = 0; i < PRE_N; i++) {
		pre[i] = malloc(200);
		if (pre[i])
			memset(pre[i], 1, 200);
	}
}
__attribute__((section(".preinit_array"), used)) static void (*preinit)(int, char **, char **) = preinit_heap;

/* 2000 blocks of 100 B: the sizes the library freed, so they take its chunks. */
void reuse_site(char **out)
{
	for (int i = 0; i < REUSE_N; i++) {
		out[i] = malloc(100);
		memset(out[i], 2, 100);
	}
}

/* 20000 blocks of 64 B: on fresh heap past everything. */
void fresh_site(char **out)
{
	for (int i = 0; i < FRESH_N; i++) {
		out[i] = malloc(64);
		memset(out[i], 3, 64);
	}
}

int main(void)
{
	static char *reuse[REUSE_N], *fresh[FRESH_N];
	unsigned long sum = ctorheap_sum();

	reuse_site(reuse);
	fresh_site(fresh);
	for (int i = 0; i < PRE_N; i++)
		sum += (unsigned char)pre[i][199];
	for (int i = 0; i < REUSE_N; i++)
		sum += (unsigned char)reuse[i][99];
	for (int i = 0; i < FRESH_N; i++)
		sum += (unsigned char)fresh[i][63];
	printf("heap grown before main; checksum %lu\n", sum);
	return 0;
}
