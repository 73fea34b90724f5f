/*
 * A signal handler interrupting a thread that allocates (often inside the shim), every 200 us.
 *   signal_handler touch [N]: the handler writes to a fresh page of a buffer mapped beforehand,
 *     one page per signal: async-signal-safe, so the program is valid natively.  stderr says how
 *     many pages the handler touched (that depends on timing): so many first touches of
 *     handler_buffer.
 *   signal_handler alloc [N]: the handler mallocs.  Not async-signal-safe: glibc's malloc is not
 *     reentrant, and natively the program hangs or crashes now and then (a signal during the
 *     first malloc's tcache_init, which holds the arena lock, is the usual way).  The shim must
 *     not make that more frequent: a robustness check against the native failure rate.
 * N: iterations of the allocating loop (default 400,000).  stdout is the same in every run.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>

#define PAGES 4096

static char *buf;
static volatile sig_atomic_t ticks;

static void on_alarm_touch(int sig)
{
	(void)sig;
	if (ticks < PAGES)
		buf[(size_t)ticks * 4096] = 1;
	ticks++;
}

static void on_alarm_alloc(int sig)
{
	(void)sig;
	free(malloc(100 + (size_t)(ticks % 5000)));
	ticks++;
}

char *handler_buffer(void)
{
	void *p = mmap(NULL, (size_t)PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void loop_site(long n)
{
	for (long i = 0; i < n; i++) {
		char *p = malloc(16 + (size_t)(i % 9000));
		p[0] = 1;
		free(p);
	}
}

int main(int argc, char **argv)
{
	int touch = argc > 1 && strcmp(argv[1], "touch") == 0;
	long n = argc > 2 ? atol(argv[2]) : 400000;
	struct sigaction sa;

	if (argc < 2 || (!touch && strcmp(argv[1], "alloc") != 0)) {
		fprintf(stderr, "usage: signal_handler touch|alloc [N]\n");
		return 2;
	}
	if (touch && !(buf = handler_buffer()))
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = touch ? on_alarm_touch : on_alarm_alloc;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 200}, {0, 200}};
	setitimer(ITIMER_REAL, &it, NULL);
	loop_site(n);
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_IGN);
	printf("done, %s\n", ticks > 0 ? "signals arrived" : "no signals");
	if (touch)
		fprintf(stderr, "handler touched %d pages\n", ticks < PAGES ? (int)ticks : PAGES);
	return 0;
}
