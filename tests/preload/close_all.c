/*
 * A program that closes every descriptor but the standard ones, as daemons
 * and some shells do (close_range, or closefrom), then goes on allocating
 * and touching memory (issue 19: exact mode must survive it).
 * Usage: close_all close_range|closefrom
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "touched.h"

#define PAGE 4096

char *early_site(void)
{
	return MAP_TOUCHED(30);
}

char *late_site(void)
{
	return MAP_TOUCHED(100);
}

char *late_malloc_site(void)
{
	char *p = malloc(200 * PAGE);
	if (!p)
		exit(2);
	memset(p, 1, 200 * PAGE);
	return p;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	char *a = early_site();
	if (!a)
		return 2;
	if (!strcmp(argv[1], "closefrom"))
		closefrom(3);
	else if (syscall(SYS_close_range, 3u, ~0u, 0u))
		return 3;
	char *b = late_site();
	if (!b)
		return 2;
	char *c = late_malloc_site();
	free(c);
	munmap(b, 100 * PAGE);
	munmap(a, 30 * PAGE);
	printf("closed with %s, touched 30 + 100 + 200 pages\n", argv[1]);
	return 0;
}
