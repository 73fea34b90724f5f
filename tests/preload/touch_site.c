/*
 * Touch sites (exact mode, PFSHIM_TOUCH_SITE=1): one buffer's pages are
 * first touched by user code (touch_loop), another's by the kernel inside
 * read(2), which fills it from a file.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 32

void touch_loop(char *p, int n)
{
	for (int i = 0; i < n; i++)
		p[(long)i * PAGE] = 1;
}

char *user_buffer(void)
{
	return mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

char *read_buffer(void)
{
	return mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(void)
{
	char *u = user_buffer(), *r = read_buffer();
	touch_loop(u, PAGES);
	int fd = open("/dev/zero", O_RDONLY);
	ssize_t got = fd >= 0 ? read(fd, r, PAGES * PAGE) : -1;
	if (fd >= 0)
		close(fd);
	/* the executable is smaller than 128 KiB? then fewer pages were filled: say how many */
	printf("read %s\n", got == PAGES * PAGE ? "all" : got > 0 ? "part" : "none");
	return 0;
}
