/*
 * Running a program under the shim, for `pfshim record` and `pfshim advise
 * --verify` alike (launch.c): finding libpfshim.so, preparing the log
 * directory, the environment, fork and exec with exec failures reported
 * through a close-on-exec pipe (so a program that itself exits 127 is not
 * taken for one that could not be run), waiting, and afterwards saying
 * which processes of the run were not traced and why.  The exit statuses of
 * pfshim itself live here too.
 */
#ifndef PFSHIM_LAUNCH_H
#define PFSHIM_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>

/* Exit statuses of pfshim itself (record passes its program's through). */
enum pfs_exit {
	PFS_EXIT_OK = 0,
	PFS_EXIT_BAD_LOGS = 1,	/* a log unreadable or corrupt, output not written */
	PFS_EXIT_USAGE = 2,	/* bad command line, or a directory refused */
	PFS_EXIT_CANNOT_RUN = 127, /* the program (or the shim) cannot be run */
};

/*
 * The libpfshim.so to preload: $PFSHIM_LIB, else next to pfshim, else in
 * ../lib from it.  0, or -ENOENT (said on stderr, prefixed by `who`).
 */
int pfs_launch_find_lib(char *buf, size_t len, const char *who);

/*
 * The log directory `dir`, made with its missing parents (mode 0700), or an
 * existing one.  One that already holds logs (*.pfslog) is refused unless
 * `force`, which removes those logs first (and says so): two runs in one
 * directory would read as one.  Returns 0, PFS_EXIT_USAGE (refused) or
 * PFS_EXIT_CANNOT_RUN (cannot be made: the component and the reason said).
 */
int pfs_launch_outdir(const char *dir, bool force, const char *who);
/* Removes the last `made` components of `dir` where empty (a run that wrote nothing). */
void pfs_launch_unmake(const char *dir, int made);

struct pfs_launch {
	const char *who;	/* "record", "advise": the messages' prefix */
	const char *lib;	/* libpfshim.so, put first in LD_PRELOAD */
	char **argv;		/* NULL-terminated; argv[0] looked up in PATH */
	const char *outdir;	/* PFSHIM_OUT; NULL: ./pfshim.<pid of the program> */
	bool force;		/* pfs_launch_outdir's */
	const char *mode;	/* PFSHIM_MODE; NULL: inherited */
	const char *policy;	/* PFSHIM_POLICY; NULL: inherited unless no_policy */
	bool no_policy;		/* PFSHIM_POLICY removed (a plain run) */
	const char *stdout_path, *stderr_path;	/* NULL: pfshim's own */
	bool null_stdin;	/* standard input from /dev/null */
	bool like_system;	/* ^C and ^\ are the program's; SIGTERM, SIGHUP passed on */
	/* Called with the child's pid and log directory before it may exec (it waits until this returns). */
	void (*started)(pid_t pid, const char *outdir, void *arg);
	void *started_arg;
};

struct pfs_launch_result {
	int status;		/* the exit status, 128+N if killed by signal N */
	int wst;		/* wait4's status */
	char *outdir;		/* the log directory, absolute (free it) */
	int made_dirs;		/* components of it made for this run (pfs_launch_unmake) */
	uint64_t wall_ns;	/* fork to wait */
	struct rusage ru;	/* wait4's */
};

/*
 * Runs l->argv under the shim and waits for it.  0 when it ran (whatever its
 * status); else the exit status for pfshim (PFS_EXIT_CANNOT_RUN when it could
 * not be started: "pfshim: WHO: cannot run 'CMD': reason" on stderr, or a
 * refused directory's), with nothing left to free.
 */
int pfs_launch_run(const struct pfs_launch *l, struct pfs_launch_result *r);

/* A pager for a text report ($PAGER, as git runs it). */
struct pfs_launch_pager {
	pid_t pid;		/* > 0: running */
	FILE *f;
	struct sigaction old_pipe;
};

/*
 * Standard output, or when it is a terminal a pipe to $PAGER (`less`, with
 * LESS=FRX unless set, when PAGER is unset; none when it is empty or "cat",
 * or no pager can be found).  SIGPIPE is ignored while it runs.
 */
FILE *pfs_launch_pager(struct pfs_launch_pager *pg);
/* Closes the pipe and waits for the pager (the user reads, then quits). */
void pfs_launch_pager_end(struct pfs_launch_pager *pg);

struct pfs_run;
/*
 * After a run: one line on `out` per process that was not traced, with the
 * reason (a static or setuid executable, a sanitizer's runtime, a Go
 * program, LD_PRELOAD dropped), found from the logs' exec records and the
 * executables themselves; `argv0` is the command when no log was written at
 * all.  Returns how many lines were written.
 */
int pfs_launch_untraced(const struct pfs_run *run, const char *argv0, const char *who,
			FILE *out);

#endif
