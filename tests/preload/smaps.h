/* For target programs: this process's transparent huge pages, from smaps_rollup. */
#ifndef TESTS_SMAPS_H
#define TESTS_SMAPS_H

#include <stdio.h>

static inline long anon_huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

#endif
