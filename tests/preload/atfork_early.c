/*
 * Links libatforkearly.so, whose fork child handler, registered before the
 * shim started, writes 64 pages the library mapped then: those copies are
 * the child's, counted once the shim's own child set-up runs ahead of that
 * handler.  The child writes nothing else of its own.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int atforkearly_pages(void);

int main(void)
{
	printf("pages %d\n", atforkearly_pages());
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 1;
	return 0;
}
