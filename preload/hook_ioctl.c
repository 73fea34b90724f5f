/*
 * ioctl: only UFFDIO_REGISTER matters, the program registering memory
 * with a userfaultfd of its own (the shim steps back from it: see
 * tracker.h's release).  Every other request passes at the cost of one
 * compare; the program's userfaultfd is noticed here rather than at the
 * userfaultfd system call or /dev/userfaultfd, which would mean
 * interposing syscall() (variadic, and a raw clone or vfork through it
 * cannot return through a wrapper's frame) or open().
 */
#include <stdarg.h>
#include <sys/ioctl.h>

#include "hook.h"
#include "kcompat.h"

PFS_EXPORT int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *); /* glibc passes the third argument on as a pointer too */
	va_end(ap);
	PFS_ENSURE(ioctl);
	if (PFS_UNLIKELY(!real_ioctl))
		return (int)syscall(SYS_ioctl, fd, request, arg);
	if (PFS_UNLIKELY(request == UFFDIO_REGISTER) && pfs_hook_tracking()) {
		int saved = errno;
		pfs_tls_busy = 1;
		pfs_core_uffd_register(fd, arg);
		errno = saved;
		pfs_hook_leave();
	}
	return real_ioctl(fd, request, arg);
}
