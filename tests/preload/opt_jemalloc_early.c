/*
 * Another allocator (jemalloc, linked) that serves memory before the shim started: the
 * program's .preinit_array (run before every constructor, the shim's included) takes a 1 MiB
 * block from it and writes it whole.  jemalloc's extent holding it was mapped before the shim:
 * the shim carves such memory by its later blocks (heap.h), and the pages held when it started
 * were taken for the baseline (tcmalloc linked into a program: 520 pages its start wrote,
 * 0.907 of the kernel's first touches).  The output is the same natively and under the shim.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EARLY (1 << 20)

static char *early;

static void preinit_alloc(int argc, char **argv, char **envp)
{
	(void)argc, (void)argv, (void)envp;
	early = malloc(EARLY);
	if (early)
		memset(early, 7, EARLY);
}
__attribute__((section(".preinit_array"), used)) static void (*preinit)(int, char **, char **) = preinit_alloc;

int main(void)
{
	char *later = malloc(EARLY);
	if (!early || !later)
		return 1;
	memset(later, 8, EARLY);
	printf("early %d, later %d\n", early[EARLY - 1], later[EARLY / 2]);
	return 0;
}
