/*
 * fork while 3 other threads wait: before any fork handler runs, glibc's
 * fork marks their descriptors free in the child (a write to the top page
 * of each one's stack) and the kernel stores the child's thread id in the
 * forking thread's descriptor.  Each is a copy the kernel counts in the
 * child, as are the child's own writes to 6 pages of desc_site's mapping,
 * present at the fork.  The threads end after the child.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define THREADS 3

static int gate[2];
static pthread_barrier_t ready;

static void *waiter(void *arg)
{
	char c;
	(void)arg;
	pthread_barrier_wait(&ready);
	while (read(gate[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

char *desc_site(void)
{
	return mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(void)
{
	pthread_t th[THREADS];
	if (pipe(gate) || pthread_barrier_init(&ready, NULL, THREADS + 1))
		return 1;
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&th[i], NULL, waiter, NULL))
			return 1;
	pthread_barrier_wait(&ready);
	char *p = desc_site();
	if (p == MAP_FAILED)
		return 1;
	for (int i = 0; i < 10; i++)
		p[(long)i * PAGE] = 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 6; i++)
			p[(long)i * PAGE + 8] = 2; /* 6 copies */
		_exit(0);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 1;
	close(gate[1]);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	printf("threads %d, child copies 6\n", THREADS);
	return 0;
}
