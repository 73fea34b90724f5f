/*
 * The run's log directory: chosen from PFSHIM_OUT, opened once and kept in
 * the descriptor keeper; every log is created relative to it (issue 19).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdkeep.h"
#include "proc.h"
#include "rundir.h"
#include "util.h"

#define PFS_DIR_FD_MIN 560 /* the run's directory, out of the program's way */

/*
 * The run's directory, opened once (issue 19: checking it with lstat and
 * then opening the log by path let another user who could write its parent
 * swap it for a symlink in between, and redirect root's log).  Kept in the
 * descriptor keeper; every log is created relative to it.
 */
static struct pfs_fd dir_fd = PFS_FD_INIT(PFS_DIR_FD_MIN, pfs_proc.dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);

/*
 * `name` in the directory open at `at`, made 0700 if missing, opened with
 * O_DIRECTORY|O_NOFOLLOW (a symlink in its place is refused), its owner
 * checked on the descriptor.  The descriptor, or -errno with *why.
 */
static int open_dir_at(int at, const char *name, struct stat *st, const char **why)
{
	/* Made only when missing: every process after the run's first finds it there. */
	int fd = PFS_NO_EINTR(openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(at, name, 0700) && errno != EEXIST)
			return -errno;
		fd = PFS_NO_EINTR(openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	}
	if (fd < 0) {
		int err = errno;
		if (err == ELOOP)
			*why = "a symbolic link, refused";
		else if (err == ENOTDIR)
			*why = "not a directory";
		return -err;
	}
	if (fstat(fd, st)) {
		int err = -errno;
		close(fd);
		return err;
	}
	if (st->st_uid != geteuid()) {
		close(fd);
		*why = "owned by another user";
		return -EPERM;
	}
	return fd;
}

/*
 * Opens pfs_proc.dir.  A directory others may write (world-writable, as
 * /tmp is) is refused unless it is sticky and ours (others cannot rename
 * or remove what we make in it): then a private subdirectory pfshim.PID is
 * made in it the same way and becomes the run's directory.
 */
int pfs_rundir_open(const char **why)
{
	struct stat st;
	int fd = open_dir_at(AT_FDCWD, pfs_proc.dir, &st, why);
	if (fd >= 0 && (st.st_mode & S_IWOTH)) {
		char name[32];
		size_t len = strlen(pfs_proc.dir);
		snprintf(name, sizeof(name), "pfshim.%d", (int)pfs_proc.pid);
		int sub = -EPERM;
		if (!(st.st_mode & S_ISVTX))
			*why = "writable by every user and not sticky";
		else if (len + 1 + strlen(name) >= sizeof(pfs_proc.dir))
			sub = -ENAMETOOLONG;
		else if ((sub = open_dir_at(fd, name, &st, why)) >= 0 && (st.st_mode & (S_IWGRP | S_IWOTH))) {
			close(sub);
			sub = -EPERM;
			*why = "its private subdirectory is writable by others";
		}
		close(fd);
		fd = sub;
		if (fd >= 0)
			snprintf(pfs_proc.dir + len, sizeof(pfs_proc.dir) - len, "/%s", name);
	}
	if (fd < 0)
		return fd;
	dir_fd.same = 1;
	return pfs_fd_keep(&dir_fd, fd) < 0 ? -EBADF : 0;
}

/* The run's directory in this process: a forked child uses the copy it inherited, the same directory. */
int pfs_rundir_fd(void)
{
	return pfs_fd_is(&dir_fd) ? dir_fd.fd : pfs_fd_get(&dir_fd);
}

/* The run's directory by name: PFSHIM_OUT (relative to the working directory), else ./pfshim.PID. */
int pfs_rundir_choose(char *out, size_t size)
{
	if (pfs_proc.cfg.out[0] == '/') {
		pfs_strlcpy(out, pfs_proc.cfg.out, size);
		return 0;
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	int n;
	if (pfs_proc.cfg.out[0])
		n = snprintf(out, size, "%s/%s", cwd, pfs_proc.cfg.out);
	else
		n = snprintf(out, size, "%s/pfshim.%d", cwd, (int)pfs_proc.pid);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

