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

#define PAGE 4096

static void touch(char *m, size_t pages)
{
	if (m == MAP_FAILED)
		exit(2);
	for (size_t i = 0; i < pages; i++)
		m[i * PAGE] = 1;
}

char *before_site(void)
{
	char *m = mmap(NULL, 50 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	touch(m, 50);
	return m;
}

char *after_site(void)
{
	char *m = mmap(NULL, 100 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	touch(m, 100);
	return m;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	char *a = before_site();
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
	munmap(b, 100 * PAGE);
	munmap(a, 50 * PAGE);
	printf("touched 50 + 100 pages\n");
	return 0;
}
