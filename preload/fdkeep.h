/*
 * The shim's long-lived descriptors (its log, the page map, userfaultfds,
 * its copy of stderr, a handler's pipe and pidfd), kept one way: moved out
 * of the program's way (to a high number), their identity remembered
 * (device, inode, the process that opened them), verified before use, and
 * reopened by path where they have one, when the program closed or
 * replaced the number, or when a forked child holds the parent's copy.
 */
#ifndef PFS_FDKEEP_H
#define PFS_FDKEEP_H

#include <sys/types.h>

struct pfs_fd {
	int fd;			/* -1: none */
	int min;		/* kept at this number or above */
	const char *path;	/* reopened from there (NULL: never) */
	int flags;		/* open(2) flags for that */
	int same;		/* reopened only as the same file (its device and inode), not whatever the path names now */
	dev_t dev;
	ino_t ino;
	pid_t pid;		/* the process that opened or kept it */
	int lock;		/* the pid of the process reopening it, 0 none */
};

#define PFS_FD_INIT(min_, path_, flags_) {.fd = -1, .min = (min_), .path = (path_), .flags = (flags_)}

/* Takes `fd` into k (moved to k->min or above, its identity noted); returns the number kept, or -errno. */
int pfs_fd_keep(struct pfs_fd *k, int fd);
/* Opens k->path with k->flags and keeps it: the number, or -errno. */
int pfs_fd_open(struct pfs_fd *k);
/* The number is still k's file (in this process or one that inherited it). */
int pfs_fd_is(const struct pfs_fd *k);
/* The number is still k's file, in the process that keeps it. */
int pfs_fd_ok(const struct pfs_fd *k);
/*
 * k's descriptor, verified; else reopened from k->path (a number that is
 * no longer ours is forgotten, never closed: it may be the program's now,
 * and a parent's copy in a forked child is closed).  -1 when neither.
 */
int pfs_fd_get(struct pfs_fd *k);
/*
 * A word the kernel zeroes in a forked child (MADV_WIPEONFORK): where the
 * process's pid is kept, so that the checks above ask the kernel for it
 * only in a new process (fdkeep.c).
 */
void pfs_fd_pid_word(volatile int *w);
/* Closes k's descriptor if it is still ours here, and forgets it. */
void pfs_fd_drop(struct pfs_fd *k);

#endif
