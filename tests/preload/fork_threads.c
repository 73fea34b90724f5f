/* fork while other threads allocate (and may hold allocator or shim locks); the child allocates. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

void busy_site(void)
{
	char *p = malloc(64 + (size_t)(rand() % 20000));
	p[0] = 1;
	free(p);
}

static void *spinner(void *arg)
{
	(void)arg;
	while (!stop)
		busy_site();
	return NULL;
}

void child_work(void)
{
	for (int i = 0; i < 100; i++)
		free(malloc(5000));
}

int main(void)
{
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, spinner, NULL);
	int ok = 0;
	for (int i = 0; i < 30; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			child_work();
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	printf("%d children ok\n", ok);
	return 0;
}
