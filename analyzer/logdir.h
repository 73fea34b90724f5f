/*
 * The log files of a directory (a run's, or record's output): the one rule
 * for which names are logs, `*.pfslog`, for the report that loads them, the
 * launcher that refuses or clears a directory holding an earlier run, and
 * record, which tells the processes the shim logged from those it did not.
 */
#ifndef PFSHIM_LOGDIR_H
#define PFSHIM_LOGDIR_H

#include <stdbool.h>
#include <stddef.h>

/* A log's file name (no directory part). */
bool pfs_logdir_is_log(const char *name);

/*
 * The names (without the directory) of dir's logs, sorted; the count, or
 * -errno when dir cannot be read or memory runs out.  *names is freed with
 * pfs_logdir_free.
 */
int pfs_logdir_list(const char *dir, char ***names);
void pfs_logdir_free(char **names, int n);

#endif
