/* Heap pages carved before fork and written by the child: copy-on-write at the carving site. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define N 5000

static char *keep[N];

void table_site(void)
{
	for (int i = 0; i < N; i++) {
		keep[i] = malloc(100); /* 112-byte chunks: 560,000 B, about 137 pages */
		memset(keep[i], 1, 100);
	}
}

int main(void)
{
	table_site();
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < N; i++)
			keep[i][0] = 2; /* every page of the table: copied */
		printf("child rewrote the table\n");
		exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("parent done\n");
	return 0;
}
