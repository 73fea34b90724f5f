/*
 * Shared memory: a parent maps 64 MiB MAP_SHARED|MAP_ANONYMOUS and writes
 * it, attaches a 1 MiB SysV segment and writes it, then forks 4 workers
 * that write every page of the mapping again.  Each process prints on stderr
 * the kernel's count of its faults in its loop (getrusage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "minflt.h"

#define PAGES 16384
#define SHM_BYTES (1 << 20)

__attribute__((noinline)) static char *shared_site(void)
{
	char *p = mmap(NULL, (size_t)PAGES * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

__attribute__((noinline)) static char *sysv_site(int *id)
{
	*id = shmget(IPC_PRIVATE, SHM_BYTES, IPC_CREAT | 0600);
	char *p = *id < 0 ? (void *)-1 : shmat(*id, NULL, 0);
	return p == (void *)-1 ? NULL : p;
}

int main(void)
{
	int id;
	char *p = shared_site(), *s = sysv_site(&id);
	if (!p || !s)
		return 1;
	long f0 = minflt();
	for (long i = 0; i < PAGES; i++)
		p[i * 4096] = 1;
	long f1 = minflt();
	for (long i = 0; i < SHM_BYTES / 4096; i++)
		s[i * 4096] = 1;
	long f2 = minflt();
	fprintf(stderr, "parent %ld shm %ld\n", f1 - f0, f2 - f1);
	fflush(stderr);
	for (int w = 0; w < 4; w++)
		if (fork() == 0) {
			long g0 = minflt();
			for (long i = 0; i < PAGES; i++)
				p[i * 4096] += 1;
			fprintf(stderr, "worker %ld\n", minflt() - g0);
			_exit(0);
		}
	int ok = 1, st;
	for (int w = 0; w < 4; w++)
		ok &= wait(&st) > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	shmdt(s);
	shmctl(id, IPC_RMID, NULL);
	printf("%s, every page %d\n", ok ? "workers done" : "a worker failed", p[4096]);
	return 0;
}
