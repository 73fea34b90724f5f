/* The shim's messages (msg.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fdkeep.h"
#include "msg.h"
#include "util.h"

/*
 * Messages go to the stderr the program started with, kept on a high
 * descriptor: programs close fd 2 at exit (coreutils' close_stdout) and a
 * later open may reuse it for a data file.  Before each write the copy's
 * identity is checked (and fd 2's, the fallback); a message with nowhere
 * safe to go is dropped.
 */
static struct pfs_fd msg_fd = PFS_FD_INIT(600, NULL, 0);

void pfs_msg_fd_init(void)
{
	int fd = pfs_sys_dupfd(2, msg_fd.min);
	if (fd >= 0)
		pfs_fd_keep(&msg_fd, fd);
}

static int msg_target(void)
{
	if (msg_fd.fd < 0)
		return 2;
	struct stat st;
	if (pfs_fd_is(&msg_fd)) /* a forked child's inherited copy serves it too */
		return msg_fd.fd;
	return fstat(2, &st) == 0 && st.st_dev == msg_fd.dev && st.st_ino == msg_fd.ino ? 2 : -1;
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

