/* Allocates at one site, says how many, then waits to be killed with SIGKILL. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void victim_site(int n)
{
	for (int i = 0; i < n; i++)
		if (!malloc(64))
			abort();
}

void victim_big(void)
{
	if (!malloc(256 * 1024))
		abort();
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	victim_site(n);
	victim_big();
	printf("ready %d\n", n);
	fflush(stdout);
	for (;;)
		pause();
}
