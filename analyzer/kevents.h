/*
 * The kernel's fault events of a run, watched from outside (kevents.c), for
 * `pfshim record`: every process the shim could not trace (a static or Go
 * executable, a vfork child before its exec, an image exec'd from one of
 * those) gets its faults counted by mapping, as a log of its own.
 *
 * record opens perf_event_open's page-fault event on the child it starts
 * (enabled at its exec; forked children and threads follow) with the
 * process records (mappings, forks, execs, exits), reads the rings from a
 * thread while the run goes on, and at the end writes a log for each
 * process image that has none: PROC_START (mode exact, flags
 * PFS_PROC_FAULT_EVENTS | PFS_PROC_OUTSIDE), the mappings as category
 * allocations ([stack], [data of MODULE], [mapped without libc], [shared]),
 * the faults as FAULTS events, and PROC_END with the kernel's count.
 */
#ifndef PFSHIM_KEVENTS_H
#define PFSHIM_KEVENTS_H

#include <sys/types.h>

struct pfs_kev;

/*
 * Opens the events on `pid` (stopped before its exec) and starts reading
 * them; the shim's logs go to `outdir` (an image that has one there is the
 * shim's: its events are dropped as soon as that is seen).  NULL when the
 * kernel refuses: *why says why (perf_event_paranoid, no perf events), and
 * the run goes on without.
 */
struct pfs_kev *pfs_kev_start(pid_t pid, const char *outdir, const char **why);

/*
 * Attaches to the running process `pid` (of the same user, or any as root):
 * each of its threads, and what they start from now on, followed until
 * pfs_kev_finish.  Its mappings come from /proc/PID/maps; pages present
 * before the attach are not known, so a fault on one of them after a fork
 * counts as a first touch.  NULL with *why when the kernel refuses.
 */
struct pfs_kev *pfs_kev_attach(pid_t pid, const char *outdir, const char **why);

/*
 * The run ended (`root_wst`: the wait status of the started process): reads
 * what is left, writes a log into `outdir` for each image that left none
 * and took faults, and frees k.  Returns the number of logs written.
 */
int pfs_kev_finish(struct pfs_kev *k, const char *outdir, int root_wst);

#endif
