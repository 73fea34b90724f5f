/*
 * Reads of shared memory another process wrote: the parent writes the first
 * 32 MiB of a 64 MiB shared anonymous mapping (8,192 faults), a child writes
 * 16-48 MiB and ends, and the parent reads one byte of each MiB: a read of a
 * page the child made maps the page cache's pages around it too
 * (fault-around), one fault for many pages; a page nobody made is one of
 * its own.  The kernel's count of the reads goes to stderr ("reads: N
 * faults"); stdout is the same in every run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096l
#define MIB (1l << 20)

char *read_around_site(long len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		exit(2);
	return p;
}

static long faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

int main(void)
{
	char *m = read_around_site(64 * MIB);
	for (long i = 0; i < 32 * MIB; i += PAGE)
		m[i] = 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		for (long i = 16 * MIB; i < 48 * MIB; i += PAGE)
			m[i] = 2;
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	long f0 = faults(), sum = 0;
	for (long i = 0; i < 64 * MIB; i += MIB)
		sum += m[i];
	long n = faults() - f0;
	fprintf(stderr, "reads: %ld faults\n", n);
	printf("sum %ld\n", sum);
	return 0;
}
