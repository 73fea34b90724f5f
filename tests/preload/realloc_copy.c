/*
 * realloc copies a heap block into a mapping of its own: a 2 MiB block made on the heap (the
 * mmap threshold raised first), a small block after it so that it cannot grow in place, then,
 * with the threshold back at 128 KiB, realloc to 8 MiB: glibc maps a new chunk and copies the
 * 2 MiB into it, 513 pages first touched inside realloc; then 1 MiB more is written (256 pages).
 * pfshim took the copied pages for the new mapping's baseline (postgres's repalloc of a 6 MiB
 * buffer: 769 faults the kernel counted and pfshim did not).
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OLD (2 << 20)
#define NEW (8 << 20)

__attribute__((noinline)) char *heap_site(void)
{
	return malloc(OLD);
}

__attribute__((noinline)) char *grow_site(char *p)
{
	return realloc(p, NEW);
}

int main(void)
{
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	char *a = heap_site();
	char *guard = malloc(64);
	if (!a || !guard)
		return 1;
	memset(a, 1, OLD);
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	char *b = grow_site(a);
	if (!b)
		return 1;
	memset(b + OLD, 2, 1 << 20);
	printf("copied %d, written %d\n", b[OLD - 1], b[OLD + 5]);
	free(b);
	free(guard);
	return 0;
}
