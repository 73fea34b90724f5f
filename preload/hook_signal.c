/*
 * sigaction: passes through; the shim's last-pass handler over a signal's
 * default action stays invisible to the program (core.c).  Async-signal-
 * safe, as sigaction is: a flag and a field, no lock.
 */
#include <signal.h>

#include "hook.h"

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
