/*
 * Run-time probes: which userfaultfd and PAGEMAP_SCAN features this kernel,
 * this sysctl setting and this process's privileges actually allow.
 *
 * Each probe makes its own small mapping with raw system calls, needs no
 * allocation and no stdio, prints nothing, and leaves no mapping or
 * descriptor behind (except the descriptor pfs_probe_uffd hands back).
 * They are meant to run once, at start-up and again in a forked child
 * (privileges and sysctls do not change across fork, but setuid programs
 * exist).
 */
#ifndef PFS_PROBE_H
#define PFS_PROBE_H

#include <stdint.h>

/*
 * 1 when PAGEMAP_SCAN on /proc/self/pagemap reports a page this probe touched
 * as present and its untouched neighbours as absent; 0 when it does not work
 * here (ENOTTY or EINVAL: a kernel before 6.7; no /proc; a wrong answer);
 * -errno when the probe itself could not run (ENOMEM, EMFILE, ...).
 * Also 0 in a non-dumpable process (setuid program, or one that changed uid
 * with fs.suid_dumpable = 0): /proc/self/pagemap then belongs to root and
 * open() fails with EACCES.  A descriptor opened before the change keeps
 * working, and a descriptor always reads the mm of the process that opened
 * it: a forked child must open its own.
 */
int pfs_probe_pagemap_scan(void);
/* The same through `pm`, this process's page map already open (fast mode keeps one: no second open). */
int pfs_probe_pagemap_scan_fd(int pm);

/*
 * 1 when a read of an untouched private anonymous page maps the shared zero
 * page (a later write takes a second fault), 0 when it maps a fresh page of
 * its own; 1 also when it cannot be told; -errno when the probe could not run.
 */
int pfs_probe_read_maps_zero_page(void);

/* How a userfaultfd descriptor was obtained. */
enum pfs_uffd_kind {
	PFS_UFFD_NONE = 0,
	PFS_UFFD_SYSCALL = 1,	/* userfaultfd(2): faults taken by the kernel are delivered too */
	PFS_UFFD_DEV = 2,	/* /dev/userfaultfd + USERFAULTFD_IOC_NEW: the same, by file permission */
	PFS_UFFD_USER_ONLY = 3,	/* userfaultfd(UFFD_USER_MODE_ONLY): kernel-side faults fail with EFAULT */
};

struct pfs_uffd_probe {
	int kind;		/* enum pfs_uffd_kind that worked, PFS_UFFD_NONE if none */
	uint64_t available;	/* UFFDIO_API with features = 0: what the kernel offers */
	uint64_t granted;	/* what a handshake asking for all of them was given */
	uint64_t ioctls;	/* uffdio_api.ioctls of that handshake */
	/* 0, or the positive errno each attempt failed with (ENOENT etc. for /dev). */
	int err_syscall;
	int err_dev;
	int err_user_only;
};

/*
 * Finds a userfaultfd this process may open: userfaultfd(O_CLOEXEC|O_NONBLOCK),
 * else /dev/userfaultfd, else the same with UFFD_USER_MODE_ONLY.  The
 * handshake is done on throw-away descriptors of the kind that worked: one
 * with features = 0 to learn what the kernel offers, one asking for all of it
 * (UFFD_FEATURE_EVENT_FORK needs CAP_SYS_PTRACE; without it that bit is
 * dropped).
 *
 * Returns a new descriptor of that kind, O_CLOEXEC|O_NONBLOCK, on which
 * UFFDIO_API has NOT been called yet: the kernel allows one UFFDIO_API per
 * descriptor, and features such as SIGBUS or the EVENT_* ones change how
 * the process behaves, so the caller asks for exactly the ones it uses.
 * The caller closes it.  Returns -errno when no kind worked.
 *
 * *user_mode_only_out (may be NULL) is 1 for PFS_UFFD_USER_ONLY, else 0;
 * *features_out (may be NULL) is the granted feature mask.
 */
int pfs_probe_uffd(int *user_mode_only_out, uint64_t *features_out);

/* The same, with the details; `out` is always filled.  */
int pfs_probe_uffd_detail(struct pfs_uffd_probe *out);

/*
 * 1 when asynchronous write-protect works end to end on an anonymous mapping
 * of the probe's own: UFFD_FEATURE_WP_ASYNC|UFFD_FEATURE_WP_UNPOPULATED,
 * UFFDIO_REGISTER_MODE_WP, UFFDIO_WRITEPROTECT, then a write to a populated
 * and to an unpopulated page, and PAGEMAP_SCAN reporting exactly those two as
 * PAGE_IS_WRITTEN.  0 when some step is refused; -errno when the probe could
 * not run.
 */
int pfs_probe_wp_async(void);

#endif
