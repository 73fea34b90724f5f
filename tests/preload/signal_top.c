/*
 * A signal handler that allocates while the program grows its heap page
 * after page (issue 19).  Each 4000-byte block splits malloc's top chunk
 * and writes the new top's size on a fresh page.  If a signal runs between
 * malloc moving the top and writing that size (natively a few
 * instructions; in exact mode the whole wait for the fault handler, when
 * the page's first touch is malloc's own), the handler finds a top of size
 * 0: mallinfo2's keepcost says so, and a malloc from the top aborts in
 * sysmalloc.  The handler counts what it saw (stderr); stdout says "done".
 * (malloc in a signal handler is not async-signal-safe; programs do it.)
 * Usage: signal_top BLOCKS [WORK_US [TIMER_US]]: WORK_US of computing between
 * blocks (0), a signal every TIMER_US (100).
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t signals, caught;

static void on_alarm(int sig)
{
	(void)sig;
	signals++;
	struct mallinfo2 mi = mallinfo2(); /* the main arena's lock is not taken by a single-threaded malloc */
	if (mi.keepcost == 0)
		caught++; /* a malloc from the top here would abort */
}

char *grow_site(void)
{
	return malloc(4000);
}

static void work(long us)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20000, us = argc > 2 ? atol(argv[2]) : 0,
	     period = argc > 3 ? atol(argv[3]) : 100;
	/*
	 * The heap grows once, now, by more than the loop needs: the loop never
	 * reaches sysmalloc, whose brk call returns with the signal pending and
	 * the top not yet updated (a window natively too).
	 */
	mallopt(M_TOP_PAD, (int)(n * 4096 + (16 << 20)));
	char **blocks = calloc((size_t)n, sizeof(*blocks));
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, period}, {0, period}};
	setitimer(ITIMER_REAL, &it, NULL);
	for (long i = 0; i < n; i++) {
		blocks[i] = grow_site();
		work(us);
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	fprintf(stderr, "signal_top: %d signals, %d found the top half made\n", (int)signals, (int)caught);
	printf("done\n");
	return 0;
}
