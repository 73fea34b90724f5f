#define _GNU_SOURCE
/* mmap (anonymous and file), mremap, munmap, madvise, posix_memalign, realloc. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void map_anon_site(void)
{
	char *p = mmap(NULL, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 1, 4096);
	p = mremap(p, 8 << 20, 16 << 20, MREMAP_MAYMOVE);
	madvise(p, 4096, MADV_DONTNEED);
	munmap(p, 16 << 20);
}

void map_file_site(const char *path)
{
	int fd = open(path, O_RDONLY);
	char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("first byte %d\n", p[0] != 0);
	munmap(p, 4096);
	close(fd);
}

void aligned_site(void)
{
	void *p;
	if (posix_memalign(&p, 64, 1000) == 0)
		free(p);
	free(aligned_alloc(4096, 8192));
}

void realloc_site(void)
{
	char *p = NULL;
	for (int i = 1; i <= 4; i++)
		p = realloc(p, (size_t)i * 100000);
	free(p);
}

int main(int argc, char **argv)
{
	(void)argc;
	map_anon_site();
	map_file_site(argv[0]);
	aligned_site();
	realloc_site();
	printf("done\n");
	return 0;
}
