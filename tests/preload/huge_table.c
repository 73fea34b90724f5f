/*
 * A 256 MiB table touched page by page, in load_table(), as a program
 * loading a large table does.  Prints the kernel's own count of the minor
 * faults the touching took (getrusage, around the loop only), so that a
 * test can set pfshim's first_touch_faults for the site beside it: under
 * PFSHIM_POLICY='hugepage if site=load_table' the kernel maps most of it
 * with transparent huge pages, one fault per 2 MiB, where the machine
 * allows (THP "madvise" or "always").
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "minflt.h"

#define TABLE_BYTES (256ul << 20)

char *load_table(long *faults)
{
	char *t = malloc(TABLE_BYTES);
	long before;

	if (!t)
		return NULL;
	before = minflt();
	for (size_t off = 0; off < TABLE_BYTES; off += 4096)
		t[off] = (char)(off >> 12);
	*faults = minflt() - before;
	return t;
}

int main(void)
{
	long faults = 0, sum = 0;
	char *t = load_table(&faults);

	if (!t)
		return 1;
	for (size_t off = 0; off < TABLE_BYTES; off += 4096)
		sum += t[off];
	/* stdout: the same with and without the shim; the count goes to stderr */
	printf("table of %lu MiB, checksum %ld\n", TABLE_BYTES >> 20, sum);
	fprintf(stderr, "minflt %ld\n", faults);
	free(t);
	return 0;
}
