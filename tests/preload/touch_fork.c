/* First touches after fork: each process counts the fresh pages it touched itself. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

char *shared_site(void)
{
	return mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void touch(char *p, int from, int to)
{
	for (int i = from; i < to; i++)
		p[(long)i * PAGE] = 1;
}

int main(void)
{
	char *p = shared_site();
	touch(p, 0, 10); /* parent, before fork: 10 */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		touch(p, 100, 120); /* child: 20 fresh pages */
		touch(p, 0, 5);     /* present at the fork: copy-on-write, not first touches */
		printf("child touched 20 fresh pages\n");
		exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	touch(p, 200, 207); /* parent, after fork: 7 */
	printf("parent touched 17 fresh pages\n");
	return WEXITSTATUS(st);
}
