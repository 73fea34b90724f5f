/*
 * sigaction: passes through; the shim's last-pass handler over a signal's
 * default action stays invisible to the program (core.c).  Async-signal-
 * safe, as sigaction is: a flag and a field, no lock.
 */
#include <signal.h>

#include "hook.h"
#include "sites.h"

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
		pfs_core_sigaction(sig, act, old);
		errno = saved;
	}
	return r;
}

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
