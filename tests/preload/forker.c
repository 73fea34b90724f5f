/* fork: parent and child allocate at their own sites; the parent reports the child's status. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void parent_site(void)
{
	for (int i = 0; i < 11; i++)
		if (!malloc(48))
			abort();
}

void child_site(void)
{
	for (int i = 0; i < 13; i++)
		if (!malloc(80))
			abort();
}

int main(void)
{
	parent_site();
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		child_site();
		printf("child done\n");
		exit(7);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("parent saw child exit %d\n", WEXITSTATUS(st));
	return 0;
}
