/*
 * The pfshim command line: `pfshim report|record|help ...`.  Kept out of
 * main.c so the unit tests, which link every analyzer file but main.c, can
 * drive it in-process.
 */
#ifndef PFSHIM_CLI_H
#define PFSHIM_CLI_H

#include <stddef.h>

#define PFS_VERSION_STRING "0.1.0"

/* Exit statuses of pfshim itself (record passes its program's through). */
enum pfs_exit {
	PFS_EXIT_OK = 0,
	PFS_EXIT_BAD_LOGS = 1,	/* a log unreadable or corrupt, output not written */
	PFS_EXIT_USAGE = 2,	/* bad command line, or a feature not available yet */
	PFS_EXIT_CANNOT_RUN = 127, /* record: the program (or the shim) cannot be run */
};

/* The libpfshim.so that record and advise --verify preload: 0 or -ENOENT (said on stderr). */
int pfs_cli_find_lib(char *buf, size_t len);

/* Returns the exit status; prints to stdout/stderr, never calls exit(). */
int pfs_cli_main(int argc, char **argv);

#endif
