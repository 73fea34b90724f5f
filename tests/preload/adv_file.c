/*
 * For the advisor: a 16 MiB file written, then mapped and read from start
 * to end (a file mapping read in order: willneed/sequential).  ARGV[1]:
 * the file to use (made and removed here).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FILE_BYTES (16u << 20)

const unsigned char *file_site(int fd)
{
	void *p = mmap(NULL, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
	static char buf[1 << 16];
	const char *path = argc > 1 ? argv[1] : "adv_file.data";
	unsigned long sum = 0;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return 1;
	for (size_t off = 0; off < FILE_BYTES; off += sizeof(buf)) {
		memset(buf, (int)(off >> 16), sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return 1;
	}
	const unsigned char *p = file_site(fd);
	if (!p)
		return 1;
	for (size_t off = 0; off < FILE_BYTES; off += 64)
		sum += p[off];
	printf("read %u MiB in order, checksum %lu\n", FILE_BYTES >> 20, sum);
	munmap((void *)p, FILE_BYTES);
	close(fd);
	unlink(path);
	return 0;
}
