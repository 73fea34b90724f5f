/* PFSHIM_* variables: one table, read once from the environment. */
#ifndef PFS_CONFIG_H
#define PFS_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define PFS_CONFIG_STR_MAX 4096

/* The strings last: the numbers share the page of the fields before them (each fresh page a fault at start). */
struct pfs_config {
	int mode;		/* enum pfs_mode requested, or PFS_MODE_UFFD; -1 = unset (choose) */
	int quiet;		/* PFSHIM_QUIET */
	unsigned scan_ms;	/* PFSHIM_SCAN_MS */
	int touch_site;		/* PFSHIM_TOUCH_SITE */
	long run_pid;		/* PFSHIM_RUN: pid of the run's first traced process; 0 = we are it */
	int pagemap;		/* PFSHIM_PAGEMAP: PFS_PAGEMAP_* */
	uint64_t log_max;	/* PFSHIM_LOG_MAX: bytes of log per process, 0 = no limit */
	char out[PATH_MAX];	/* PFSHIM_OUT, empty = default directory */
	char policy[PFS_CONFIG_STR_MAX]; /* PFSHIM_POLICY, empty = none */
};

#define PFS_LOG_MAX_MIN (1u << 20)

#define PFS_SCAN_MS_DEFAULT 10u
/* PFSHIM_MODE=uffd: exact mode by the userfaultfd trap, not fault events (a request only; it runs as exact). */
#define PFS_MODE_UFFD 3

/* How fast mode reads the page map: PAGEMAP_SCAN where it works, else entries; or as forced. */
enum { PFS_PAGEMAP_AUTO = 0, PFS_PAGEMAP_SCAN = 1, PFS_PAGEMAP_READ = 2 };

/* Warnings go through this callback, one call per problem, text without the "pfshim: " prefix. */
typedef void (*pfs_config_warn_fn)(void *ctx, const char *text);

/* Fills `c` from an environment array; returns the number of warnings given. */
int pfs_config_parse(struct pfs_config *c, char *const *envp, pfs_config_warn_fn warn, void *ctx);

/* Helpers exposed for the policy parser and tests. */
int pfs_parse_bool(const char *s, int *out);
int pfs_parse_size(const char *s, uint64_t *out); /* N, NK, NM, NG */
int pfs_parse_uint(const char *s, unsigned long max, unsigned long *out);

#endif
