/* Executes itself N times, allocating at one site in each image. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void chain_site(void)
{
	for (int i = 0; i < 9; i++)
		if (!malloc(24))
			abort();
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3;
	chain_site();
	printf("image %d\n", n);
	fflush(stdout);
	if (n > 0) {
		char arg[16];
		snprintf(arg, sizeof(arg), "%d", n - 1);
		execl("/proc/self/exe", argv[0], arg, (char *)NULL);
		perror("exec");
		return 1;
	}
	return 0;
}
