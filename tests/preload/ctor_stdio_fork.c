/*
 * Copy-on-write of the brk heap's first page when the heap was made before the shim started
 * (tests/preload/lib/ctorstdio.c: a library's constructor reads a file through stdio).  The
 * program frees the constructor's 4 KiB stdio buffer (fclose), then forks FORKS children that
 * exit at once; after each fork the parent frees and mallocs small blocks, which writes malloc's
 * per-thread cache on the heap's first page: a copy each fork, as the kernel counts.  The free
 * of a block of a page or more once took the pre-start part of the heap out of the tracked
 * memory with it (both modes), and those copies went uncounted: bash's parent, 0.90 of the
 * kernel's copies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 60
#define BLOCKS 16

int ctorstdio_close(void);

int main(void)
{
	if (ctorstdio_close() == EOF)
		return 1;
	char *keep[BLOCKS];
	for (int i = 0; i < BLOCKS; i++)
		keep[i] = malloc(48);
	for (int n = 0; n < FORKS; n++) {
		pid_t p = fork();
		if (p < 0)
			return 1;
		if (p == 0)
			_exit(0);
		if (waitpid(p, NULL, 0) != p)
			return 1;
		for (int i = 0; i < BLOCKS; i++) {
			free(keep[i]);
			keep[i] = malloc(48);
			if (!keep[i])
				return 1;
			memset(keep[i], n, 48);
		}
	}
	printf("%d forks\n", FORKS);
	return 0;
}
