/*
 * A signal handler that allocates, interrupting a thread that allocates (possibly inside the
 * shim).  Not async-signal-safe: glibc's malloc is not reentrant, and natively this program hangs
 * or crashes now and then (a signal during the first malloc's tcache_init, which holds the arena
 * lock, is the usual way).  The shim must not make that more frequent: a robustness check
 * compared with the native failure rate.  argv[1]: iterations (default 2,000,000).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
	(void)sig;
	void *p = malloc(100 + (size_t)(ticks % 5000));
	free(p);
	ticks++;
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
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 200}, {0, 200}};
	setitimer(ITIMER_REAL, &it, NULL);
	loop_site(n);
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	printf("done, %s\n", ticks > 0 ? "signals arrived" : "no signals");
	return 0;
}
