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

#define PAGE 4096

static void touch(char *m, size_t pages)
{
	if (m == MAP_FAILED)
		exit(2);
	for (size_t i = 0; i < pages; i++)
		m[i * PAGE] = 1;
}

char *early_site(void)
{
	char *m = mmap(NULL, 30 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	touch(m, 30);
	return m;
}

char *late_site(void)
{
	char *m = mmap(NULL, 100 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	touch(m, 100);
	return m;
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
	if (!strcmp(argv[1], "closefrom"))
		closefrom(3);
	else if (syscall(SYS_close_range, 3u, ~0u, 0u))
		return 3;
	char *b = late_site();
	char *c = late_malloc_site();
	free(c);
	munmap(b, 100 * PAGE);
	munmap(a, 30 * PAGE);
	printf("closed with %s, touched 30 + 100 + 200 pages\n", argv[1]);
	return 0;
}
