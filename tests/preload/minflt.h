/* For target programs: the kernel's count of this process's minor page faults so far (getrusage). */
#ifndef TESTS_MINFLT_H
#define TESTS_MINFLT_H

#include <sys/resource.h>

static inline long minflt(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return u.ru_minflt;
}

#endif
