/*
 * `pfshim diff DIR_A DIR_B`: the same program under two policies or builds.
 * Processes are matched by command and position in the process tree, sites
 * by their symbolized frames (function, file, line; never addresses, which
 * ASLR and rebuilds move).  See docs/analyzer.md ("diff").
 */
#ifndef PFSHIM_DIFF_H
#define PFSHIM_DIFF_H

#include <stdbool.h>
#include <stdio.h>

struct pfs_diff_opts {
	bool json;		/* else text */
	bool color;		/* text: better green, worse red */
	unsigned top;		/* sites listed per process; 0 = all */
};

/* PFS_EXIT_OK, or PFS_EXIT_BAD_LOGS when a log was unreadable or corrupt (still printed). */
int pfs_diff_paths(const char *a, const char *b, FILE *out, const struct pfs_diff_opts *o);

#endif
