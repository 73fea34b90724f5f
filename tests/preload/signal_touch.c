/*
 * A signal handler that interrupts a thread allocating (often inside the shim) and writes to a
 * fresh page of a buffer mapped beforehand, one page per signal: async-signal-safe (no allocation,
 * no stdio in the handler), so the program is valid natively.  stdout is the same in every run;
 * stderr says how many pages the handler touched (that depends on timing): so many first touches
 * of handler_buffer.  argv[1]: iterations of the loop (default 400,000).
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

static void on_alarm(int sig)
{
	(void)sig;
	if (ticks < PAGES)
		buf[(size_t)ticks * 4096] = 1;
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
	long n = argc > 1 ? atol(argv[1]) : 400000;
	struct sigaction sa;

	buf = handler_buffer();
	if (!buf)
		return 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 200}, {0, 200}};
	setitimer(ITIMER_REAL, &it, NULL);
	loop_site(n);
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	signal(SIGALRM, SIG_IGN);
	printf("done, %s\n", ticks > 0 ? "signals arrived" : "no signals");
	fprintf(stderr, "handler touched %d pages\n", ticks < PAGES ? (int)ticks : PAGES);
	return 0;
}
