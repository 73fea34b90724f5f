/*
 * Closes every descriptor above 2, then dup2()s a file over every descriptor
 * the shim might use, and keeps allocating large blocks until the log must
 * grow past its first segment (which needs the log's descriptor).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void hostile_site(int n)
{
	for (int i = 0; i < n; i++) {
		char *p = malloc(8192);
		p[0] = 1;
		free(p);
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 50000;
	syscall(SYS_close_range, 3, ~0u, 0);
	int fd = open("/dev/null", O_WRONLY);
	for (int target = 3; target < 1024; target++)
		if (target != fd)
			dup2(fd, target);
	hostile_site(n);
	printf("survived %d\n", n);
	return 0;
}
