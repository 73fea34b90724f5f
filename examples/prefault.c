/*
 * Prefaulting: a table filled right after its allocation takes one page
 * fault per page during the fill (demand paging).  Two ways to move those
 * faults out of the fill:
 *   - the program asks for it: mmap with MAP_POPULATE (populated_site);
 *   - a policy asks for it, on the unchanged binary (table_site):
 *
 *     build/pfshim record -- build/examples/prefault
 *     build/pfshim record --policy 'populate if site=table_site' -- build/examples/prefault
 *
 * stdout is the same in every run; each fill phase's time goes to stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define TABLE_BYTES (256ul << 20)
#define POPULATED_BYTES (64ul << 20)

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The table: 256 MiB of 64-byte entries. */
unsigned long *table_site(void)
{
	return malloc(TABLE_BYTES);
}

/* The same kind of table, populated by the kernel before mmap returns. */
unsigned long *populated_site(void)
{
	void *p = mmap(NULL, POPULATED_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* The touch phase: one word written per 64-byte entry; returns its time in ms. */
static double fill(unsigned long *t, size_t bytes)
{
	double t0 = now_ms();
	for (size_t i = 0; i < bytes / sizeof(*t); i += 8)
		t[i] = i * 2654435761ul;
	return now_ms() - t0;
}

static unsigned long checksum(const unsigned long *t, size_t bytes)
{
	unsigned long sum = 0;
	for (size_t i = 0; i < bytes / sizeof(*t); i += 8)
		sum ^= t[i];
	return sum;
}

int main(void)
{
	double t0 = now_ms();
	unsigned long *t = table_site();
	double alloc_ms = now_ms() - t0;
	if (!t)
		return 1;
	double fill_ms = fill(t, TABLE_BYTES);
	printf("table_site: %lu MiB filled (checksum %lx)\n", TABLE_BYTES >> 20, checksum(t, TABLE_BYTES));
	fprintf(stderr, "table_site: allocation %.1f ms, touch phase %.1f ms\n", alloc_ms, fill_ms);
	free(t);

	t0 = now_ms();
	unsigned long *p = populated_site();
	alloc_ms = now_ms() - t0;
	if (!p)
		return 1;
	fill_ms = fill(p, POPULATED_BYTES);
	printf("populated_site: %lu MiB filled (checksum %lx)\n", POPULATED_BYTES >> 20, checksum(p, POPULATED_BYTES));
	fprintf(stderr, "populated_site: mmap with MAP_POPULATE %.1f ms, touch phase %.1f ms\n", alloc_ms, fill_ms);
	munmap(p, POPULATED_BYTES);
	return 0;
}
