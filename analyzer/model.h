/*
 * The analyzer's model of a run: one struct pfs_proc per log file (one per
 * process image), holding what its records say: identity, modules, stacks,
 * allocation sites with their counters, large blocks, children.  Filled by
 * the record handlers in model_load.c while logread walks the files, then
 * completed by pfs_model_finish() (seq-ordered replay, ranking, totals,
 * process tree).
 */
#ifndef PFSHIM_MODEL_H
#define PFSHIM_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uthash.h>

#include <pfshim/log_format.h>

#include "an_common.h"

/* One MODULE record: an object loaded at seq, unloaded at unload_seq. */
struct pfs_module {
	uint32_t id;
	uint8_t build_id_len;
	uint8_t build_id[PFS_BUILD_ID_MAX];
	uint64_t seq;
	uint64_t unload_seq;	/* UINT64_MAX while loaded */
	uint64_t base;		/* load bias: file vaddr + base = run-time address */
	uint64_t start, end;	/* [start, end) at run time */
	char *path;
};

struct pfs_stack {
	uint32_t id;
	uint32_t nframes;
	uint64_t seq;
	bool truncated;		/* deeper frames were cut by the shim */
	bool python;		/* holds Python frames (pfs_is_pyframe), in place of the interpreter's eval frames */
	uint64_t *frames;	/* return addresses, frames[0] the allocator's caller */
	UT_hash_handle hh;
};

/* A Python function that Python frames of stacks name (PYCODE). */
struct pfs_pycode {
	uint32_t id;
	uint32_t first_line;
	char *file;		/* as the code object names it (a path, "<string>", "<frozen ...>") */
	char *name;		/* qualified: "Class.method", "<module>" */
	UT_hash_handle hh;
};

/* Exact mode with PFSHIM_TOUCH_SITE=1: where a site's pages were first touched. */
struct pfs_touch_pc_key {
	uint64_t pc;		/* the faulting instruction (a system call's, for a kernel-side touch) */
	int64_t sys;		/* that system call's number, -1 for a touch in user code */
};

struct pfs_touch_pc {
	struct pfs_touch_pc_key key;
	uint64_t faults;
	UT_hash_handle hh;
};

/* Two 32-bit fields, no padding: the key can be hashed as bytes. */
struct pfs_site_key {
	uint32_t stack;
	uint32_t kind;		/* enum pfs_kind */
};

struct pfs_site {
	struct pfs_site_key key;
	uint64_t allocations;	/* ALLOC records + COUNTERS slot counts */
	uint64_t bytes_allocated;
	/* faults as the kernel took them (a huge page mapped by one fault is one), and the base pages */
	uint64_t first_touch_faults;
	uint64_t cow_faults;
	uint64_t first_touch_pages;
	uint64_t cow_pages;
	uint64_t prefaulted_pages;
	struct pfs_touch_pc *touch_pcs;	/* uthash; NULL unless touch sites were logged (exact mode) */
	/* POLICY records: the rules applied here ("; "-joined when several), how often, what failed */
	char *policy;
	uint64_t policy_applications;
	uint64_t policy_failures[PFS_POLICY_NACTIONS];
	int16_t policy_error[PFS_POLICY_NACTIONS];	/* the last failure's -errno per action */
	/* large blocks (those with ALLOC records) still live at the end */
	uint64_t live_blocks;
	uint64_t bytes_live_at_end;
	UT_hash_handle hh;
};

struct pfs_totals {
	uint64_t first_touch_faults;
	uint64_t cow_faults;
	uint64_t allocations;
	uint64_t bytes_allocated;
	uint64_t prefaulted_pages;
	uint64_t bytes_live_at_end;
};

struct pfs_child {
	uint64_t pid;
	uint64_t seq;
	uint32_t how;		/* enum pfs_fork_how */
};

struct pfs_unload {
	uint64_t seq;
	uint32_t id;
};

/*
 * ALLOC / FREE / REMAP, kept to be replayed in seq order (file order is not
 * time order).  56 bytes: a long run keeps millions (a 5-million-pair
 * malloc log, 10 million of them).
 */
struct pfs_block_ev {
	uint64_t seq;
	uint32_t order;		/* file position (records read, modulo 2^32), to keep equal seqs stable */
	uint16_t type;		/* PFS_REC_ALLOC, _FREE, _REMAP */
	uint8_t kind;
	bool inherited : 1;	/* ALLOC: a forked child's record of its parent's allocation */
	bool category : 1;	/* ALLOC: memory accounted by kind (a stack, .data, ...), no allocation */
	bool populated : 1;	/* ALLOC: mmap with MAP_POPULATE (or MAP_LOCKED), resident before any touch */
	bool reserved : 1;	/* ALLOC: an anonymous mmap without access (PROT_NONE), opened later by mprotect */
	uint64_t addr;		/* REMAP: old_addr */
	union {
		uint64_t size;	/* ALLOC */
		uint64_t new_addr; /* REMAP */
	};
	uint64_t length;	/* REMAP: old_length */
	uint64_t time_ns;	/* CLOCK_MONOTONIC; ALLOC: storms bound touches by it; FREE: lifetimes end */
	union {
		uint32_t stack;	/* ALLOC (a REMAP's block keeps its ALLOC's site) */
		uint64_t new_length; /* REMAP */
	};
};
_Static_assert(sizeof(struct pfs_block_ev) == 56, "a block event is 56 bytes");

/* Fast mode: one TOUCH record, kept for the fault rate over time (storms.c). */
struct pfs_touch_ev {
	uint64_t time_ns;	/* the scan that found the pages; they came before it */
	uint64_t alloc_seq;	/* 0: heap pages (no ALLOC record of their own) */
	uint32_t stack;
	uint32_t pages;		/* base pages */
	uint32_t faults;	/* as the kernel took them: a huge page is one */
	uint8_t kind;
	bool cow;
};

/* Exact mode: one fault event of a FAULTS record, before attribution (faults.c). */
struct pfs_fault_ev {
	uint64_t time_ns;
	uint64_t addr;		/* page address */
	uint64_t pc;		/* PFSHIM_TOUCH_SITE: the faulting instruction; 0 unknown */
	uint32_t tid;
	int32_t sys;		/* the system call that touched it, -1 none */
	uint8_t flags;		/* PFS_FEV_*, and PFS_FAULT_AGAIN */
	uint32_t handler_ns;	/* its share of its record's handler time */
};
/* pfs_fault_ev.flags: of a FAULTS record with PFS_FAULTS_AGAIN: a fault on a page another thread's fault made present at once, no page of its own */
#define PFS_FAULT_AGAIN 0x80

/* Exact mode: heap pages carved by a site (CARVE). */
struct pfs_carve_ev {
	uint64_t seq;
	uint64_t addr, end;
	uint32_t stack;
	uint8_t kind;
};

/* The pseudo-site of faults no allocation covers (malloc's own metadata on fresh heap pages). */
#define PFS_STACK_ALLOCATOR UINT32_MAX

/* Fast mode: one SCAN record. */
struct pfs_scan_ev {
	uint64_t time_ns;
	uint64_t new_pages;
	uint32_t reason;	/* enum pfs_scan_reason */
	bool have_wait;		/* PFS_SCAN_WAIT: */
	uint64_t wait_ns;	/* the main thread's wait for a CPU so far */
};

/* The main thread's wait for a CPU, cumulative, at `t` ns after the image's start. */
struct pfs_wait_pt {
	uint64_t t, wait;
};

struct pfs_proc {
	char *log_path;
	uint64_t pid, ppid, root_pid;
	uint64_t start_ns;	/* CLOCK_MONOTONIC */
	int64_t real_offset_ns;	/* CLOCK_REALTIME less CLOCK_MONOTONIC at its start: a file's time is start_ns + this */
	uint32_t mode;		/* enum pfs_mode */
	uint32_t start_flags;	/* PROC_START's PFS_PROC_* (the mechanism: pfs_mechanism_name) */
	uint32_t exec_gen;
	uint32_t page_size;
	uint32_t file_flags;	/* PFS_FILE_* */
	bool have_start;	/* a PROC_START was read */
	char *exe;
	char **argv;
	uint32_t argc;
	bool cmd_truncated;
	char *command;		/* argv joined by spaces (the exe when argv is empty) */

	bool ended;		/* a PROC_END was read */
	uint64_t scans;		/* fast mode: SCAN records (passes that found touches, and their edges) */
	uint64_t scanned_new_pages;
	struct pfs_touch_ev *touches;	/* file order */
	size_t ntouches, touches_cap;
	struct pfs_scan_ev *scan_evs;	/* file order */
	size_t nscan_evs, scan_evs_cap;
	uint64_t end_ns;	/* PROC_END time (CLOCK_MONOTONIC); 0 unknown */
	bool have_status;	/* exit_status is meaningful (not for an exec) */
	int32_t exit_status;
	uint32_t end_reason;	/* enum pfs_end_reason */
	char *exec_path;	/* EXEC: the image that replaced this one */
	bool have_rusage;	/* PROC_END carried the kernel's fault count */
	uint64_t minflt_end;	/* the kernel's count of the process's minor faults at the end (since its fork) */
	uint64_t majflt_end;	/* and of its major faults (a page read from disk or swap during the fault) */
	bool have_sched;	/* PROC_END carried the main thread's run and wait times */
	uint64_t run_ns_end, wait_ns_end;	/* since its fork, at the end */
	/*
	 * After finish: the main thread's wait for a CPU over the image's life
	 * (samples from SCAN records and PROC_END, from (0, 0), in time order;
	 * none when the log has none), and the share of its life it did not
	 * wait, 1 - wait / (end - start) (1 when unknown).  On a loaded machine
	 * a program takes its faults at a fraction of its own speed in wall
	 * time: storms and rates are judged against the time it did not wait
	 * (pfs_model_unwaited_ns).
	 */
	struct pfs_wait_pt *waits;
	size_t nwaits;
	double unwaited_share;
	/*
	 * Coverage, after finish: the kernel's minor faults of this image (its
	 * count at the end, less the previous image's at the exec) and the faults
	 * the report accounts for (first touches and copy-on-write of every site,
	 * the shim's own apart); self_faults: the shim's own memory's; the
	 * kernel's major faults of the image, the same way.
	 */
	uint64_t kernel_minor_faults;
	uint64_t kernel_major_faults;
	uint64_t accounted_faults;
	uint64_t self_faults;

	struct pfs_child *children;
	size_t nchildren, children_cap;
	struct pfs_module *modules;	/* sorted by seq after finish */
	size_t nmodules, modules_cap;
	struct pfs_unload *unloads;
	size_t nunloads, unloads_cap;
	struct pfs_stack *stacks;	/* uthash by id */
	struct pfs_pycode *pycodes;	/* uthash by id */
	struct pfs_site *sites;		/* uthash by key */
	struct pfs_site **ranked;	/* after finish: most expensive first */
	size_t nsites;
	struct pfs_block_ev *evs;
	size_t nevs, evs_cap;
	struct pfs_totals totals;

	uint64_t records, bad_records, unknown_records;
	uint32_t lost_records;	/* the file header: records the shim could not write */

	/* exact mode (faults.c) */
	struct pfs_fault_ev *faults;	/* until attributed */
	size_t nfaults, faults_cap;
	struct pfs_carve_ev *carves;
	size_t ncarves, carves_cap;
	uint64_t fault_events;		/* decoded from FAULTS records */
	uint64_t fault_bytes;		/* their size in the log */
	uint64_t thp_registered_bytes;	/* THP-eligible memory registered: its fault pattern changed */
	uint64_t unobservable_bytes;	/* ranges the kernel refused to register */
	uint64_t unobservable_ranges;
	uint64_t unattributed_faults;	/* charged to [allocator] */
	uint64_t handler_ns_removed;	/* the handlers' time taken out of the timeline (faults.c) */

	/* process tree, after finish */
	struct pfs_proc *parent;	/* the image that forked it, or its previous image */
	bool via_exec;			/* parent is this pid's previous image */
	struct pfs_proc **kids;		/* ordered by start time */
	size_t nkids, kids_cap;
	/* whose memory it was born with: its stacks and modules are valid here too */
	struct pfs_proc *fork_parent;
	uint64_t fork_seq;		/* the parent's seq at the fork; UINT64_MAX unknown */
};

struct pfs_run {
	struct pfs_proc **procs;	/* by start time after finish */
	size_t nprocs, procs_cap;
	struct pfs_an_warnings warnings;
	unsigned errors;		/* corrupt records, unreadable files: exit status 1 */
	FILE *diag;			/* problems are printed here as found; may be NULL */
	struct pfs_an_progress *progress;	/* a progress line while reading; may be NULL */
};

void pfs_model_init(struct pfs_run *run, FILE *diag);
/*
 * A directory (every *.pfslog in it) or one log file.  Problems become
 * warnings and count in run->errors; the return is 0 or -ENOMEM.
 */
int pfs_model_load_path(struct pfs_run *run, const char *path);
int pfs_model_load_file(struct pfs_run *run, const char *path);
int pfs_model_load_buffer(struct pfs_run *run, const void *buf, size_t len, const char *name);
/* Replay, rank, totals, tree: once, after all loads.  0 or -ENOMEM. */
int pfs_model_finish(struct pfs_run *run);
/* The ranking rule: most faults first, then bytes, then allocations (<0: x first). */
int pfs_model_cmp_site(const struct pfs_site *x, const struct pfs_site *y);
/* p->ranked and p->totals again from the sites' counters (after changing them).  0 or -ENOMEM. */
int pfs_model_rank(struct pfs_proc *p);
/*
 * Of [from, to) (ns after the image's start), the time its main thread did
 * not wait for a CPU: the span less the wait the samples show in it (linear
 * between samples), at least a hundredth of the span.  The span itself when
 * the log has no samples.
 */
uint64_t pfs_model_unwaited_ns(const struct pfs_proc *p, uint64_t from, uint64_t to);
void pfs_model_free(struct pfs_run *run);
/* One process of a run, freed with everything it holds (model_load.c on a failed load). */
void pfs_model_proc_free(struct pfs_proc *p);

struct pfs_site *pfs_model_site(const struct pfs_proc *p, uint32_t stack, uint32_t kind);
/* The same, created (zeroed) when missing; NULL when out of memory. */
struct pfs_site *pfs_model_site_get(struct pfs_proc *p, uint32_t stack, uint32_t kind);
/* The stack `id` as `p` knows it, looking through the fork parents; *owner: whose. */
const struct pfs_stack *pfs_model_stack(const struct pfs_proc *p, uint32_t id,
					const struct pfs_proc **owner);
/* The Python function `id` as `p` knows it, looking through the fork parents; NULL when never recorded. */
const struct pfs_pycode *pfs_model_pycode(const struct pfs_proc *p, uint32_t id);
/*
 * The module that held `addr` at `seq` in `p`: the latest MODULE at or before
 * seq not unloaded by then; else the fork parents' at the fork; else, since a
 * shim may log a module just after the stack that first uses it, any module
 * of p that ever covered addr.  NULL when none did.
 */
const struct pfs_module *pfs_model_module_at(const struct pfs_proc *p, uint64_t addr,
					     uint64_t seq);

#endif
