/*
 * sigaction and the signal family (signal, sysv_signal, __sysv_signal,
 * bsd_signal, ssignal, sigset: glibc's signal installs its
 * handler by an internal sigaction the shim cannot see): pass through; the
 * shim's last-pass handler over a signal's default action stays invisible
 * to the program (core.c), and a handler the program installs is noted
 * (sites.c: until then the shim's unwinds leave the signal mask alone).
 * Async-signal-safe, as sigaction is: flags and a field, no lock.
 */
#include <signal.h>

#include "hook.h"
#include "sites.h"

/* A disposition that runs code of the program's when the signal comes. */
static int runs_code(__sighandler_t h)
{
	return h != SIG_DFL && h != SIG_IGN && h != SIG_ERR && h != SIG_HOLD;
}

PFS_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	PFS_ENSURE(sigaction);
	if (!real_sigaction) {
		errno = ENOSYS;
		return -1;
	}
	int r = real_sigaction(sig, act, old);
	if (r == 0) {
		int saved = errno;
		if (act && runs_code(act->sa_handler))
			pfs_unwind_note_handler();
		pfs_core_sigaction(sig, act, old);
		errno = saved;
	}
	return r;
}

/* After signal's kind of call: what sigaction's hook does with its act and old. */
static __sighandler_t signal_done(int sig, __sighandler_t h, __sighandler_t prev)
{
	if (prev == SIG_ERR)
		return prev;
	int saved = errno;
	struct sigaction act = {.sa_handler = h}, old = {.sa_handler = prev};
	if (runs_code(h))
		pfs_unwind_note_handler();
	pfs_core_sigaction(sig, &act, &old);
	errno = saved;
	return old.sa_handler;
}

#define PFS_SIGNAL_HOOK(name)                                                    \
	PFS_EXPORT __sighandler_t name(int sig, __sighandler_t h)                 \
	{                                                                         \
		PFS_ENSURE(name);                                                 \
		if (!real_##name) {                                               \
			errno = ENOSYS;                                           \
			return SIG_ERR;                                           \
		}                                                                 \
		return signal_done(sig, h, real_##name(sig, h));                  \
	}
PFS_SIGNAL_HOOK(signal)
PFS_SIGNAL_HOOK(sysv_signal)
PFS_SIGNAL_HOOK(__sysv_signal) /* signal itself in a program built for strict ISO C (-std=c11) */
PFS_SIGNAL_HOOK(bsd_signal)
PFS_SIGNAL_HOOK(ssignal)
PFS_SIGNAL_HOOK(sigset)
#undef PFS_SIGNAL_HOOK

/*
 * sigprocmask: libunwind's calls while the shim unwinds with the signals
 * already blocked are answered without a system call (sites.c); every
 * other call is glibc's (pthread_sigmask is sigprocmask's body there).
 */
PFS_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	if (PFS_UNLIKELY(pfs_unwind_masked))
		return pfs_unwind_sigprocmask(how, set, old);
	int err = pthread_sigmask(how, set, old);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}
