/*
 * A library whose constructor reads a file through stdio (its own executable: a file of 4 KiB blocks): fopen's FILE and the 4 KiB buffer of
 * the first read are libc's own allocations (no early start of the shim: design.md,
 * "Processes"), so the brk heap and its first page exist before the shim started, the buffer
 * on that page, beside malloc's per-thread cache.  The program closes the file later: the
 * buffer, a block of a page or more, is freed after the shim started.
 */
#include <stdio.h>

static FILE *f;
static int first;

__attribute__((constructor)) static void ctorstdio_init(void)
{
	f = fopen("/proc/self/exe", "r");
	if (f)
		first = fgetc(f);
}

/* Closes the file; returns its first byte (the program calls it, and so links the library). */
int ctorstdio_close(void)
{
	if (f)
		fclose(f);
	f = NULL;
	return first;
}
