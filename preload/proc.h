/*
 * The traced process's state: who it is, how it is traced, where its logs
 * go.  Data only, set up by core.c; every module reads it.
 */
#ifndef PFS_PROC_H
#define PFS_PROC_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "pfshim/log_format.h"
#include "util.h"

struct pfs_process {
	int enabled;		/* allocations are being logged */
	int ended;		/* PROC_END written; hooks pass through */
	int mode;		/* enum pfs_mode that runs */
	pid_t pid, ppid, root_pid;
	int is_root;		/* first traced process of the run: prints the summary */
	int exit_status;	/* from on_exit */
	int exit_status_known;
	uint64_t start_mono_ns, start_real_ns;
	char *cmd;		/* argv, NUL-separated (arena) */
	uint32_t cmd_len, argc;
	int cmd_truncated;
	uint32_t page_size;
	uint64_t big_allocs, big_bytes; /* atomic: for the summary */
	uint64_t seq;		/* atomic: the next record's seq (log_format.h); a forked child's goes on from its parent's */
	/* The long strings last (config.h: its numbers first), each fresh page a fault at every start. */
	struct pfs_config cfg;
	char dir[PATH_MAX];
	char exe[PATH_MAX];
};

extern struct pfs_process pfs_proc;

/* Initial-exec TLS: no allocation, no lock on access (the shim is preloaded). */
extern __thread int pfs_tls_busy __attribute__((tls_model("initial-exec")));

static inline int pfs_active(void)
{
	return PFS_LIKELY(pfs_proc.enabled) && !pfs_proc.ended;
}

#endif
