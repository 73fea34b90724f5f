/* The shim's long-lived descriptors (fdkeep.h). */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fdkeep.h"
#include "util.h"

/*
 * Which process is asking, without a system call where that is safe: the
 * pid a thread last read, while a word of memory that the kernel zeroes in
 * a forked child (pfs_fd_pid_word) still holds it.  A forked child finds the
 * word zero, a thread or process of its own TLS (exact mode's handlers)
 * starts with no pid, and a handler never writes the word (it is not zero
 * then): each of them asks the kernel.  A getpid before each PAGEMAP_SCAN
 * was 26 system calls of /bin/true's start and exit.
 */
static volatile int *pid_word;
static __thread int pid_seen __attribute__((tls_model("initial-exec")));

void pfs_fd_pid_word(volatile int *w)
{
	pid_word = w;
}

static int fd_pid(void)
{
	volatile int *w = pid_word;
	int p = pid_seen;
	if (w && p && *w == p)
		return p;
	p = (int)pfs_sys_getpid();
	pid_seen = p;
	if (w && !*w)
		*w = p;
	return p;
}

int pfs_fd_keep(struct pfs_fd *k, int fd)
{
	if (fd < 0)
		return fd;
	int hi = fd < k->min ? pfs_sys_dupfd(fd, k->min) : -1; /* a number out of the way already stays */
	if (hi >= 0) {
		close(fd);
		fd = hi;
	}
	struct stat st;
	if (fstat(fd, &st)) {
		int err = -errno;
		close(fd);
		return err;
	}
	k->fd = fd;
	k->dev = st.st_dev;
	k->ino = st.st_ino;
	k->pid = fd_pid();
	return fd;
}

int pfs_fd_open(struct pfs_fd *k)
{
	int fd = PFS_NO_EINTR(open(k->path, k->flags | O_CLOEXEC));
	if (fd < 0)
		return -errno;
	struct stat st;
	if (k->same && (fstat(fd, &st) || st.st_dev != k->dev || st.st_ino != k->ino)) {
		close(fd); /* the path names another file now */
		return -ESTALE;
	}
	return pfs_fd_keep(k, fd);
}

int pfs_fd_is(const struct pfs_fd *k)
{
	struct stat st;
	return k->fd >= 0 && fstat(k->fd, &st) == 0 && st.st_dev == k->dev && st.st_ino == k->ino;
}

int pfs_fd_ok(const struct pfs_fd *k)
{
	return k->pid == fd_pid() && pfs_fd_is(k);
}

/*
 * One thread reopens at a time.  The lock word is the holder's pid: a word
 * of another process is a holder that did not survive a fork (only the
 * forking thread does), so a child takes it over instead of waiting.
 */
static void reopen_lock(struct pfs_fd *k)
{
	int me = fd_pid();
	for (;;) {
		int cur = 0;
		if (__atomic_compare_exchange_n(&k->lock, &cur, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		if (cur != me && __atomic_compare_exchange_n(&k->lock, &cur, me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return;
		sched_yield();
	}
}

int pfs_fd_get(struct pfs_fd *k)
{
	int fd = __atomic_load_n(&k->fd, __ATOMIC_ACQUIRE);
	if (fd >= 0 && pfs_fd_ok(k))
		return fd;
	reopen_lock(k);
	if (k->fd >= 0 && !pfs_fd_ok(k)) {
		if (pfs_fd_is(k))
			close(k->fd); /* a forked child's copy of the parent's: ours to close */
		k->fd = -1;
	}
	if (k->fd < 0 && k->path)
		pfs_fd_open(k);
	fd = k->fd;
	__atomic_store_n(&k->lock, 0, __ATOMIC_RELEASE);
	return fd;
}

void pfs_fd_drop(struct pfs_fd *k)
{
	if (k->fd >= 0 && pfs_fd_is(k))
		close(k->fd);
	k->fd = -1;
}
