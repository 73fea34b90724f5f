/*
 * `pfshim advise DIR` and `pfshim advise --verify -- CMD...`: loading a
 * run for the advisor, and running a program without and with the advice
 * to measure what it changes (advise_run.c).  The rules: advise.h.
 */
#ifndef PFSHIM_ADVISE_RUN_H
#define PFSHIM_ADVISE_RUN_H

#include <stdbool.h>
#include <stdio.h>

#include "advise.h"

/* A run's logs read, finished, symbolized and built into a report (one allocation to free). */
struct pfs_adv_run;

/* 0, or -errno / -EINVAL (nothing readable: said on stderr).  *bad: some log was corrupt. */
int pfs_adv_load(const char *dir, struct pfs_adv_run **out, bool *bad);
const struct pfs_report *pfs_adv_report(const struct pfs_adv_run *r);
void pfs_adv_run_free(struct pfs_adv_run *r);

/* `pfshim advise DIR`: the exit status (0; 1 corrupt or unreadable logs). */
int pfs_adv_dir(const char *dir, bool json, FILE *out);

struct pfs_verify_opts {
	const char *lib;	/* libpfshim.so */
	char **cmd;		/* NULL-terminated */
	unsigned runs;		/* of each, >= 1 */
	const char *policy;	/* NULL: the advice of the first plain run */
	const char *keep;	/* NULL: runs in a temporary directory, removed after */
	bool json;
};

/* `pfshim advise --verify`: 0 when every run happened (helped or not), else 1 or 127. */
int pfs_adv_verify(const struct pfs_verify_opts *o, FILE *out);

#endif
