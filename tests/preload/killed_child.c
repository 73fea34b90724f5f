/*
 * A child that touches 1000 pages of a large block and waits, killed by
 * SIGTERM like a pool's worker.  The parent prints how the child ended,
 * which the shim must not change; the child's touches still count.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static char *worker_site(void)
{
	return malloc(1000 * 4096 + 64);
}

int main(void)
{
	int ready[2];
	if (pipe(ready))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		char *p = worker_site();
		for (int i = 0; i < 1000; i++)
			p[(long)i * 4096 + 64] = 1;
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	char c;
	if (read(ready[0], &c, 1) != 1)
		return 1;
	kill(pid, SIGTERM);
	int st;
	waitpid(pid, &st, 0);
	printf("child %s %d\n", WIFSIGNALED(st) ? "killed by signal" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	/* The program's own view of SIGTERM is the default still. */
	struct sigaction sa;
	sigaction(SIGTERM, NULL, &sa);
	printf("SIGTERM %s\n", sa.sa_handler == SIG_DFL ? "default" : "handled");
	return 0;
}
