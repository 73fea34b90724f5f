/*
 * A steady allocator (issue 19): N rounds of a 64 KiB block and a
 * one-page mapping, each touched and given back, so that the log grows
 * by two records per allocation for as long as it runs.  Prints "done";
 * with -r, how much its resident memory grew between round 10,000 and the
 * end goes to stderr (kB).  Usage: steady_alloc N [-r] [SECONDS]
 * (SECONDS: run that long instead, at least N rounds).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static long rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

char *block_site(void)
{
	char *p = malloc(64 << 10);
	if (p)
		p[100] = 1;
	return p;
}

char *map_site(void)
{
	char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED)
		m[0] = 1;
	return m;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000, start = 0, seconds = 0;
	int report = argc > 2 && !strcmp(argv[2], "-r");
	if (argc > 3)
		seconds = atol(argv[3]);
	time_t until = time(NULL) + seconds;
	for (long i = 0; i < n || (seconds && time(NULL) < until); i++) {
		if (i == 10000)
			start = rss_kb();
		free(block_site());
		munmap(map_site(), 4096);
	}
	if (report)
		fprintf(stderr, "rss grew %ld kB\n", rss_kb() - start);
	printf("done\n");
	return 0;
}
