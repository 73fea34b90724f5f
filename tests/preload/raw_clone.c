/*
 * Children made without libc's fork, so without the shim's fork hooks
 * (issue 19): the clone3, clone and fork system calls, fork-like (no
 * CLONE_VM).  Each child allocates small and large blocks and touches
 * pages, then exits with 7; the parent prints how each child ended.
 */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

void *child_small_site(void)
{
	void *keep = NULL;
	for (int i = 0; i < 100; i++) {
		free(keep);
		keep = malloc(48);
	}
	return keep;
}

char *child_big_site(void)
{
	char *p = malloc(1 << 20);
	if (p)
		memset(p, 1, 20 * 4096);
	return p;
}

static void child(void)
{
	child_small_site();
	child_big_site();
	_exit(7);
}

static void report(const char *how, pid_t pid)
{
	int st;
	if (pid < 0) {
		printf("%s: not available\n", how);
		return;
	}
	if (waitpid(pid, &st, 0) != pid)
		printf("%s: lost\n", how);
	else if (WIFSIGNALED(st))
		printf("%s: killed by signal %d\n", how, WTERMSIG(st));
	else
		printf("%s: exited %d\n", how, WEXITSTATUS(st));
	fflush(stdout);
}

int main(void)
{
	fflush(stdout);
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	pid_t pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0)
		child();
	report("clone3", pid);
	pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		child();
	report("clone", pid);
#ifdef SYS_fork
	pid = (pid_t)syscall(SYS_fork);
	if (pid == 0)
		child();
	report("fork", pid);
#endif
	return 0;
}
