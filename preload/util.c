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
	char buf[96];
	int fd = PFS_NO_EINTR(open("/proc/self/schedstat", O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return -errno;
	ssize_t n = PFS_NO_EINTR(read(fd, buf, sizeof(buf) - 1));
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (n <= 0)
		return err ? err : -ENODATA;
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
