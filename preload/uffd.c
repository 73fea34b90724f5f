/*
 * Exact mode's descriptor (uffd.h): a full userfaultfd, so that kernel-side
 * touches (read(2) into an untouched buffer) are delivered too (a
 * user-mode-only one would make those system calls fail with EFAULT),
 * asked for THREAD_ID (the faulting thread) and PAGEFAULT_FLAG_WP
 * (copy-on-write after fork); and registration of ranges with it, through
 * a copy borrowed from the handlers for the moment.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "fdkeep.h"
#include "kcompat.h"
#include "uffd.h"
#include "uffd_handler.h"
#include "util.h"

int pfs_uffd_can_wp;

int pfs_uffd_open(const char **why)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int err_sys = fd < 0 ? errno : 0;
	if (fd < 0) {
		int dev = PFS_NO_EINTR(open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
		if (dev >= 0) {
			fd = pfs_sys_ioctl(dev, USERFAULTFD_IOC_NEW, (const void *)(uintptr_t)(O_CLOEXEC | O_NONBLOCK));
			close(dev);
		}
	}
	if (fd < 0) {
		*why = err_sys == EPERM || errno == EACCES || errno == EPERM
			       ? "a userfaultfd that sees every fault needs CAP_SYS_PTRACE, "
				 "vm.unprivileged_userfaultfd=1, or access to /dev/userfaultfd"
			       : "userfaultfd is not available in this kernel";
		return -(err_sys ? err_sys : ENOSYS);
	}
	struct uffdio_api probe = {.api = UFFD_API, .features = 0};
	/* One UFFDIO_API per descriptor: learn what is offered on a throw-away one first? Ask for what we use. */
	probe.features = UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	if (pfs_sys_ioctl(fd, UFFDIO_API, &probe)) {
		/* An older kernel without write-protect: first touches only. */
		close(fd);
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			*why = "userfaultfd refused a second descriptor";
			return -errno;
		}
		probe = (struct uffdio_api){.api = UFFD_API, .features = UFFD_FEATURE_THREAD_ID};
		if (pfs_sys_ioctl(fd, UFFDIO_API, &probe)) {
			int err = -errno;
			close(fd);
			*why = "the userfaultfd handshake failed";
			return err;
		}
	}
	pfs_uffd_can_wp = (probe.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP) != 0;
	struct pfs_fd k = PFS_FD_INIT(540, NULL, 0);
	return pfs_fd_keep(&k, fd);
}

/* Registers [start, start + len); 0 or -errno.  *wp: registered for write-protect too. */
int pfs_uffd_register(uint64_t start, uint64_t len, int *wp)
{
	*wp = 0;
	int fd = pfs_uffd_borrow();
	if (fd < 0)
		return -EBADF;
	int err = 0;
	struct uffdio_register reg = {.range = {.start = start, .len = len},
				      .mode = UFFDIO_REGISTER_MODE_MISSING | (pfs_uffd_can_wp ? UFFDIO_REGISTER_MODE_WP : 0)};
	if (pfs_sys_ioctl(fd, UFFDIO_REGISTER, &reg) == 0) {
		*wp = pfs_uffd_can_wp;
	} else {
		reg.mode = UFFDIO_REGISTER_MODE_MISSING; /* shared memory on a kernel without WP for it */
		if (!pfs_uffd_can_wp || pfs_sys_ioctl(fd, UFFDIO_REGISTER, &reg))
			err = -errno;
	}
	close(fd);
	return err;
}

