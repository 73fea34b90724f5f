/*
 * signal, sysv_signal and sigset report the disposition the program left
 * (the default), not the shim's last-pass handler that holds SIGTERM,
 * SIGINT and SIGHUP while they are at their default (core.c); the
 * program's handlers run.  The same output natively and under the shim.
 */
#define _GNU_SOURCE
#include <signal.h>
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* sigset: old, still in glibc */
#include <stdio.h>
#include <stdlib.h>

static volatile sig_atomic_t ran;

static void on_signal(int sig)
{
	ran += sig == SIGTERM || sig == SIGINT || sig == SIGHUP;
}

/* glibc's other names of signal: strict ISO C programs call __sysv_signal for signal */
extern __sighandler_t __sysv_signal(int, __sighandler_t);
extern __sighandler_t bsd_signal(int, __sighandler_t);
extern __sighandler_t ssignal(int, __sighandler_t);

static const char *name(__sighandler_t h)
{
	return h == SIG_DFL ? "default" : h == SIG_IGN ? "ignored" : h == on_signal ? "the program's" : "another";
}

int main(void)
{
	printf("signal(SIGTERM): was %s\n", name(signal(SIGTERM, on_signal)));
	printf("sysv_signal(SIGINT): was %s\n", name(sysv_signal(SIGINT, on_signal)));
	printf("sigset(SIGHUP): was %s\n", name(sigset(SIGHUP, on_signal)));
	printf("signal(SIGTERM) again: was %s\n", name(signal(SIGTERM, on_signal)));
	printf("__sysv_signal(SIGINT): was %s\n", name(__sysv_signal(SIGINT, SIG_DFL)));
	printf("bsd_signal(SIGINT): was %s\n", name(bsd_signal(SIGINT, on_signal)));
	printf("ssignal(SIGHUP): was %s\n", name(ssignal(SIGHUP, on_signal)));
	free(malloc(100)); /* a call site unwound with a handler installed */
	raise(SIGTERM);
	raise(SIGINT);
	raise(SIGHUP);
	printf("handlers ran: %d\n", (int)ran);
	return 0;
}
