/*
 * The pfshim command line: `pfshim report|record|help ...`.  Kept out of
 * main.c so the unit tests, which link every analyzer file but main.c, can
 * drive it in-process.
 */
#ifndef PFSHIM_CLI_H
#define PFSHIM_CLI_H

#include <stddef.h>

#include "launch.h"

#define PFS_VERSION_STRING "0.1.0"

/* Returns the exit status; prints to stdout/stderr, never calls exit(). */
int pfs_cli_main(int argc, char **argv);

#endif
