/*
 * nothp CMD ARGS...: runs CMD with transparent huge pages off for it
 * (PR_SET_THP_DISABLE, kept across exec), so that its faults are base pages
 * whatever the machine's THP setting and sites rank the same everywhere.
 */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: nothp CMD [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		perror("nothp: prctl");
	execvp(argv[1], argv + 1);
	perror(argv[1]);
	return 127;
}
