/* String helpers of the shim, and the main thread's scheduling times. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

size_t pfs_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);
	if (size) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = 0;
	}
	return len;
}

int pfs_schedstat(uint64_t *run_ns, uint64_t *wait_ns)
{
	int fd = PFS_NO_EINTR(open("/proc/self/schedstat", O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return -errno;
	int err = pfs_schedstat_fd(fd, run_ns, wait_ns);
	close(fd);
	return err;
}

int pfs_wait_due(uint64_t now)
{
	static uint64_t sampled; /* atomic */
	uint64_t last = __atomic_load_n(&sampled, __ATOMIC_RELAXED);
	if (now - last < 50000000u)
		return 0;
	return __atomic_compare_exchange_n(&sampled, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

int pfs_schedstat_fd(int fd, uint64_t *run_ns, uint64_t *wait_ns)
{
	char buf[96];
	ssize_t n = PFS_NO_EINTR(pread(fd, buf, sizeof(buf) - 1, 0));
	if (n <= 0)
		return n < 0 ? -errno : -ENODATA;
	buf[n] = 0;
	/* "run wait timeslices" */
	uint64_t v[2] = {0, 0};
	const char *p = buf;
	for (int i = 0; i < 2; i++) {
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v[i] = pfs_dec(&p);
	}
	*run_ns = v[0];
	*wait_ns = v[1];
	return 0;
}
