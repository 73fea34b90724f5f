/*
 * usage: static_touch N K: touches N pages of a fresh anonymous mapping and the 64 pages of a
 * .bss array, forks, the child writes K of the N pages; prints "done".  Built static by the test
 * (record.sh): pfshim record counts its faults by mapping from the kernel's fault events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile char bss[64 * 4096];

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000, k = argc > 2 ? atol(argv[2]) : 300;
	long page = sysconf(_SC_PAGESIZE);
	volatile char *p = mmap(NULL, (size_t)(n * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || k > n)
		return 2;
	for (long i = 0; i < n; i++)
		p[i * page] = 1;
	for (size_t i = 0; i < sizeof(bss); i += 4096)
		bss[i] = 1;
	pid_t c = fork();
	if (c == 0) {
		for (long i = 0; i < k; i++)
			p[i * page] = 2;
		_exit(0);
	}
	int st = 0;
	waitpid(c, &st, 0);
	printf("done\n");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
}
