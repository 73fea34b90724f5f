/*
 * mremap growth and a file mapping under exact mode: the moved or grown
 * mapping stays tracked (4 + 12 + 2 first touches at grow_site), a file
 * mapping is unobservable (the report says so).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

char *grow_site(void)
{
	return mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

char *file_site(int fd)
{
	return mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
}

int main(void)
{
	char *p = grow_site();
	for (int i = 0; i < 4; i++)
		p[i * PAGE] = 1;
	/* a neighbour in the way makes the kernel move it, at least sometimes: both are handled */
	p = mremap(p, 4 * PAGE, 16 * PAGE, MREMAP_MAYMOVE);
	for (int i = 0; i < 16; i++)
		p[i * PAGE] = 2; /* pages 4..15 are new: 12 first touches */
	madvise(p, 2 * PAGE, MADV_DONTNEED);
	long sum = 0;
	for (int i = 0; i < 16; i++)
		sum += p[i * PAGE]; /* pages 0 and 1 again: 2 first touches (reads) */
	int fd = open("/proc/self/exe", O_RDONLY);
	char *f = fd >= 0 ? file_site(fd) : MAP_FAILED;
	printf("sum %ld, file %s\n", sum, f != MAP_FAILED && f[1] == 'E' ? "ELF" : "?");
	return 0;
}
