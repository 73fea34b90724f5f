/*
 * Exact mode's fault handlers killed while the program runs (issue 19):
 * touches 50 pages, says so by creating READY, waits for GO to exist (the
 * test kills the handlers meanwhile), then touches 100 pages of a new
 * mapping and exits 0.  Without the shim GO exists from the start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "touched.h"

#define PAGE 4096

char *before_site(void)
{
	return MAP_TOUCHED(50);
}

char *after_site(void)
{
	return MAP_TOUCHED(100);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	char *a = before_site();
	if (!a)
		return 2;
	FILE *f = fopen(argv[1], "w");
	if (!f)
		return 2;
	fclose(f);
	struct stat st;
	for (int i = 0; i < 60000 && stat(argv[2], &st); i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	char *b = after_site();
	if (!b)
		return 2;
	munmap(b, 100 * PAGE);
	munmap(a, 50 * PAGE);
	printf("touched 50 + 100 pages\n");
	return 0;
}
