/*
 * Memory moved by mremap where a file mapping was: a file mapping (the program's own executable,
 * 1,024 pages of address space) unmapped, then a 64-page anonymous block moved to its place with
 * MREMAP_FIXED and grown there to 1,024 pages, the 960 new ones written.  mremap has no MMAP2
 * record: faultcheck filed the grown part's first touches under the file mapping it had last seen
 * there (postgres: a block realloc moved where a perf ring had been).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 1024
#define FIRST 64

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/exe", O_RDONLY);
	char *f = fd < 0 ? MAP_FAILED : mmap(NULL, PAGES * page, PROT_READ, MAP_PRIVATE, fd, 0);
	char *a = mmap(NULL, FIRST * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (f == MAP_FAILED || a == MAP_FAILED)
		return 1;
	memset(a, 1, FIRST * page);
	munmap(f, PAGES * page);
	char *b = mremap(a, FIRST * page, PAGES * page, MREMAP_MAYMOVE | MREMAP_FIXED, f);
	if (b == MAP_FAILED)
		return 1;
	memset(b + FIRST * page, 2, (PAGES - FIRST) * page);
	printf("moved to the file's place: %d %d\n", b == f, b[FIRST * page]);
	return 0;
}
