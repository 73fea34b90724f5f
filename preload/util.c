/* Messages and string helpers of the shim. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

/*
 * Messages go to the stderr the program started with, kept on a high
 * descriptor: programs close fd 2 at exit (coreutils' close_stdout) and a
 * later open may reuse it for a data file.  Before each write the copy's
 * identity is checked; a message with nowhere safe to go is dropped.
 */
static int msg_fd = -1;
static dev_t msg_dev;
static ino_t msg_ino;

void pfs_msg_fd_init(void)
{
	struct stat st;
	if (fstat(2, &st))
		return;
	int fd = fcntl(2, F_DUPFD_CLOEXEC, 600);
	if (fd < 0)
		return;
	msg_fd = fd;
	msg_dev = st.st_dev;
	msg_ino = st.st_ino;
}

static int same_file(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == msg_dev && st.st_ino == msg_ino;
}

static int msg_target(void)
{
	if (msg_fd < 0)
		return 2;
	if (same_file(msg_fd))
		return msg_fd;
	return same_file(2) ? 2 : -1;
}

static void (*warn_sink)(const char *text, size_t len);

void pfs_set_warn_sink(void (*sink)(const char *text, size_t len))
{
	warn_sink = sink;
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

void pfs_raw_msg(const char *s)
{
	int saved = errno;
	int fd = msg_target();
	if (fd >= 0)
		write_all(fd, s, strlen(s));
	errno = saved;
}

void pfs_warn(const char *fmt, ...)
{
	/* vsnprintf with %s/%d/%lu formats does not allocate in glibc. */
	char buf[512];
	int saved = errno;
	va_list ap;
	size_t n = sizeof("pfshim: ") - 1;
	memcpy(buf, "pfshim: ", n);
	va_start(ap, fmt);
	int k = vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	n += (size_t)k < sizeof(buf) - n - 1 ? (size_t)k : sizeof(buf) - n - 2;
	if (warn_sink)
		warn_sink(buf + 8, n - 8);
	buf[n++] = '\n';
	int fd = msg_target();
	if (fd >= 0)
		write_all(fd, buf, n);
	errno = saved;
}

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
