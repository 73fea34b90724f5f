/* vfork+exec, posix_spawn, system() and popen(): children run, nothing deadlocks, output intact. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(void)
{
	pid_t pid = vfork();
	if (pid == 0) {
		execl("/bin/echo", "echo", "from vfork", (char *)NULL);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	char *argv[] = {"echo", "from posix_spawn", NULL};
	if (posix_spawn(&pid, "/bin/echo", NULL, NULL, argv, environ) == 0)
		waitpid(pid, &st, 0);
	fflush(stdout);
	if (system("echo from system") != 0)
		return 1;
	FILE *f = popen("echo from popen", "r");
	char line[64];
	while (f && fgets(line, sizeof(line), f))
		fputs(line, stdout);
	if (f)
		pclose(f);
	return 0;
}
