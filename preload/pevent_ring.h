/*
 * The kernel's fault events (perf_event_open), read from their ring
 * buffers: a self-contained unit with no shim state, so that the analyzer
 * (pfshim record) can use it too.
 *
 * One event per CPU, each with its own ring: the kernel refuses to map the
 * ring of an inherited event that follows a task on every CPU (perf_mmap:
 * `cpu == -1 && inherit` is EINVAL), and an event bound to a CPU and a task
 * may be inherited.  With `inherit_thread` the threads of the process
 * follow (their events write into the ring of the event they inherited
 * from), a forked child does not.  Samples of one ring are in time order;
 * pfs_pev_drain() merges the rings by time.
 *
 * Raw system calls only (no allocation, no stdio): safe inside an
 * LD_PRELOAD shim's hooks as in a program of its own.
 */
#ifndef PFS_PEVENT_RING_H
#define PFS_PEVENT_RING_H

#include <stdint.h>

#define PFS_PEV_CPUS_MAX 256

struct pfs_pev_opts {
	int pid;		/* 0: the calling process; else a process of the same user */
	uint32_t type;		/* PERF_TYPE_* */
	uint64_t config;	/* PERF_COUNT_* or a tracepoint id */
	int ip;			/* sample the faulting instruction too */
	int try_kernel;		/* also the kernel's touches of user memory (inside system calls) where allowed */
	int inherit_threads;	/* threads created later follow (inherit + inherit_thread) */
	int enable_on_exec;	/* disabled until pid execs (pfshim record) */
	int inherit_children;	/* forked children and their threads follow too (pfshim record) */
	int task_events;	/* mappings, forks, execs and exits come as records too (pfs_pev_sample.kind) */
	unsigned data_pages;	/* ring size per CPU in pages, a power of two; halved while the kernel refuses */
	unsigned min_pages;	/* ... down to this */
};

#define PFS_PEV_NAME_MAX 240

struct pfs_pev_ring {
	char name[PFS_PEV_NAME_MAX];	/* the path of the MMAP record peeked last */
	int fd;
	int cpu;
	void *base;		/* header page, then data_pages of data */
	uint64_t size;		/* of the mapping */
	uint64_t tail;		/* read up to here */
};

struct pfs_pev_set {
	unsigned n;
	int with_ip;
	int task_events;
	int kernel;		/* samples of the kernel's own touches of user memory come too */
	unsigned data_pages;
	uint64_t samples;	/* read so far */
	uint64_t lost;		/* the kernel's PERF_RECORD_LOST counts: samples it could not write */
	struct pfs_pev_ring r[PFS_PEV_CPUS_MAX];
};

/* What a record of the rings is: a fault sample, or with opts.task_events what happened to a process. */
enum pfs_pev_kind {
	PFS_PEV_FAULT = 0,
	PFS_PEV_MMAP,		/* addr, len, pgoff, prot, flags, name: a mapping made (exec's included) */
	PFS_PEV_FORK,		/* pid (the child), ppid */
	PFS_PEV_EXEC,		/* pid: a new image (name: its command name, 16 bytes at most) */
	PFS_PEV_EXIT,		/* pid */
};

struct pfs_pev_sample {
	int kind;		/* enum pfs_pev_kind */
	uint64_t ip;		/* 0 unless opts.ip */
	uint64_t addr;
	uint64_t time_ns;	/* CLOCK_MONOTONIC */
	uint32_t pid, tid;
	int user;		/* the fault was taken in user mode (else by the kernel, inside a system call) */
	/* The task records' (kind != PFS_PEV_FAULT): */
	uint32_t ppid;		/* FORK */
	uint32_t prot, flags;	/* MMAP: PROT_*, MAP_* */
	uint64_t len, pgoff;	/* MMAP */
	const char *name;	/* MMAP, EXEC; valid during the callback */
};

/*
 * Opens the events on every CPU and maps their rings, enabled (unless
 * opts.enable_on_exec).  Descriptors are close-on-exec, the rings not
 * inherited by a forked child (MADV_DONTFORK).  0, or -errno with *why
 * saying which step failed (everything opened is closed again).
 */
int pfs_pev_open(struct pfs_pev_set *s, const struct pfs_pev_opts *o, const char **why);

/*
 * Reads every sample written so far, in time order across the rings, and
 * calls fn for each; PERF_RECORD_LOST counts go to s->lost.  Returns the
 * samples read.  Not re-entrant for one set: the caller serialises.
 */
uint64_t pfs_pev_drain(struct pfs_pev_set *s, void (*fn)(const struct pfs_pev_sample *sm, void *arg), void *arg);

/* The bytes one fault sample takes in a ring (a ring holds data_pages * page size of them). */
uint64_t pfs_pev_sample_bytes(const struct pfs_pev_set *s);

/* The most bytes written and not yet read in one ring. */
uint64_t pfs_pev_fullest(const struct pfs_pev_set *s);

/*
 * Closes the descriptors and keeps the rings: an event lives as long as its
 * mapping (so nothing is left for a program that closes descriptors, or
 * for an exec'd image); no poll() then.
 */
void pfs_pev_close_fds(struct pfs_pev_set *s);

/* Unmaps the rings and closes the descriptors (in a forked child: its copies, the parent's events go on). */
void pfs_pev_close(struct pfs_pev_set *s);

/* The kernel's kernel.perf_event_paranoid, or INT32_MIN when it cannot be read. */
int pfs_pev_paranoid(void);

#endif
