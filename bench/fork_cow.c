/* Fork a process with 1 GiB touched; the child writes 10% of the pages (issue 8's fork workload). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t bytes = (size_t)(argc > 1 ? atol(argv[1]) : 1024) << 20;
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	madvise(p, bytes, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < bytes; off += 4096)
		p[off] = 1;
	pid_t pid = fork();
	if (pid == 0) {
		for (size_t off = 0; off < bytes; off += 4096 * 10)
			p[off] = 2;
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("%d\n", WEXITSTATUS(st));
	return 0;
}
