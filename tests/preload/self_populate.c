/*
 * A program that prefaults its own memory: 4 MiB mapped at self_pop_site,
 * its first 16 pages written (16 faults), then the whole made present
 * without a fault, as the argument says: "madvise" (MADV_POPULATE_WRITE,
 * the default), "mlock", "mlockall" (MCL_CURRENT) or "onfault" (mlock2 with
 * MLOCK_ONFAULT: nothing populated, every page faults when written), then
 * every page written.  stderr says whether the call worked ("populated", or
 * "not populated: ..."); stdout is the same in every run.
 */
#define _GNU_SOURCE /* mlock2 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PAGE 4096l
#define LEN (4l << 20)

char *self_pop_site(void)
{
	return mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "madvise";
	char *p = self_pop_site();
	if (p == MAP_FAILED)
		return 2;
	madvise(p, LEN, MADV_NOHUGEPAGE); /* one fault a page, whatever THP's setting */
	for (long i = 0; i < 16 * PAGE; i += PAGE)
		p[i] = 1;
	int rc = !strcmp(how, "mlock")	  ? mlock(p, LEN)
		 : !strcmp(how, "mlockall") ? mlockall(MCL_CURRENT)
		 : !strcmp(how, "onfault")  ? mlock2(p, LEN, MLOCK_ONFAULT)
					    : madvise(p, LEN, MADV_POPULATE_WRITE);
	if (rc)
		fprintf(stderr, "not populated: %s\n", strerror(errno));
	else
		fprintf(stderr, "%s\n", strcmp(how, "onfault") ? "populated" : "locked on fault");
	for (long i = 0; i < LEN; i += PAGE)
		p[i] = 2;
	printf("%ld pages written\n", LEN / PAGE);
	return 0;
}
