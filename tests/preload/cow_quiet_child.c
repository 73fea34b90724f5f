/*
 * A forked child that rewrites all it shares without one call into the
 * shim (as a Python child storing into its parent's dict): the parent
 * maps and writes MIB MiB, forks, and the child writes every page again
 * (each a copy), then says so with write(2) and _exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

char *quiet_site(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(2);
	madvise(p, len, MADV_NOHUGEPAGE); /* one fault a 4 KiB page, whatever THP's setting */
	return p;
}

int main(int argc, char **argv)
{
	size_t pages = (size_t)(argc > 1 ? atoi(argv[1]) : 64) << 20 >> 12;
	char *p = quiet_site(pages * PAGE);
	for (size_t i = 0; i < pages; i++)
		p[i * PAGE] = 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		for (size_t i = 0; i < pages; i++)
			p[i * PAGE + 8] = 2;
		static const char msg[] = "child: every page copied\n";
		if (write(1, msg, sizeof(msg) - 1) < 0)
			_exit(1);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("parent: %zu pages, child exit %d\n", pages, WEXITSTATUS(st));
	return 0;
}
