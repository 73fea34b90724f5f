#ifndef PFS_RUNDIR_H
#define PFS_RUNDIR_H
/* The run's log directory (rundir.c). */
#include <stddef.h>

/* Its absolute name into out (pfs_proc.cfg.out, else pfshim.PID in the working directory); 0 or -errno. */
int pfs_rundir_choose(char *out, size_t size);
/*
 * Opens pfs_proc.dir once (O_DIRECTORY|O_NOFOLLOW, ours): a world-writable
 * one only if sticky, through a private subdirectory.  0, or -errno with *why.
 */
int pfs_rundir_open(const char **why);
/* Its descriptor in this process (a forked child's inherited copy). */
int pfs_rundir_fd(void);

#endif
