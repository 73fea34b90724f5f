/* The shim's core: process state, per-thread state, record emission. */
#ifndef PFS_CORE_H
#define PFS_CORE_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "log.h"
#include "pfshim/log_format.h"
#include "util.h"

/* Per-thread cache of call sites: (return address, stack pointer, kind) -> stack id. */
#define PFS_CACHE_SIZE 1024u
/* Every this many hits a cached site is unwound again, to catch keys that two stacks share. */
#define PFS_VERIFY_EVERY 4096u
/* A malloc block of at least this many usable bytes gets its own ALLOC record. */
#define PFS_BIG_BYTES 4096u
/* Slots per COUNTERS record. */
#define PFS_COUNTER_SLOTS 64u

struct pfs_slotmap; /* per-thread (stack, kind) -> counter slot, uthash */

struct pfs_cache_ent {
	uintptr_t ret;
	uintptr_t sp;
	uint32_t stack;
	uint8_t kind;
	uint8_t always_unwind; /* this key was seen with two stacks */
	uint16_t verify;       /* hits left before the next check */
	struct pfs_counter_slot *slot;
};

struct pfs_thread {
	struct pfs_writer w;
	uint32_t tid;
	int in_use;
	struct pfs_counter_slot *free_slots; /* unused slots of the current COUNTERS record */
	uint32_t free_slots_left;
	struct pfs_slotmap *slots;
	uint64_t carve_lo, carve_hi; /* fast mode: heap blocks inside [lo, hi) carve no new page */
	struct pfs_thread *next_all;
	struct pfs_thread *next_free;
	struct pfs_cache_ent cache[PFS_CACHE_SIZE];
};

struct pfs_process {
	int enabled;		/* allocations are being logged */
	int ended;		/* PROC_END written; hooks pass through */
	int mode;		/* enum pfs_mode that runs */
	pid_t pid, ppid, root_pid;
	int is_root;		/* first traced process of the run: prints the summary */
	int exit_status;	/* from on_exit */
	int exit_status_known;
	uint64_t start_mono_ns, start_real_ns;
	uint64_t seq;		/* atomic */
	struct pfs_config cfg;
	char dir[PATH_MAX];
	char exe[PATH_MAX];
	char *cmd;		/* argv, NUL-separated (arena) */
	uint32_t cmd_len, argc;
	int cmd_truncated;
	uint32_t page_size;
	struct pfs_log log;
	uint64_t big_allocs, big_bytes; /* atomic: for the summary */
};

extern struct pfs_process pfs_proc;

/* Initial-exec TLS: no allocation, no lock on access (the shim is preloaded). */
extern __thread int pfs_tls_busy __attribute__((tls_model("initial-exec")));
extern __thread struct pfs_thread *pfs_tls_thread __attribute__((tls_model("initial-exec")));

static inline int pfs_active(void)
{
	return PFS_LIKELY(pfs_proc.enabled) && !pfs_proc.ended;
}

struct pfs_thread *pfs_thread_get_slow(void);
static inline struct pfs_thread *pfs_thread_get(void)
{
	struct pfs_thread *t = pfs_tls_thread;
	return PFS_LIKELY(t != NULL) ? t : pfs_thread_get_slow();
}

static inline uint64_t pfs_next_seq(void)
{
	return __atomic_fetch_add(&pfs_proc.seq, 1, __ATOMIC_RELAXED);
}

/* Record emission through the calling thread's writer; NULL when the record is lost. */
void *pfs_rec_begin(struct pfs_thread *t, uint32_t size);
static inline void pfs_rec_end(void *rec, uint16_t type, uint16_t flags, uint32_t size)
{
	pfs_log_commit(rec, type, flags, size);
}

/* core.c */
int pfs_core_init(int argc, char **argv, char **envp);
void pfs_core_child_after_fork(int how);
void pfs_core_before_exec(const char *path);
void pfs_core_exec_failed(int err);
void pfs_core_end(int reason, int status);
void pfs_core_fini(void);
void pfs_core_note_fork(pid_t child, int how);
int pfs_make_dir(const char *dir);

/* modules.c: the module map, written as MODULE records. */
void pfs_modules_sync(int force);
void pfs_modules_rewrite(void);
void pfs_modules_child_reset(void);
int pfs_addr_in_self(uintptr_t addr);
int pfs_addr_in_unwinder(uintptr_t addr);
struct dl_phdr_info;
/* [start, end) of an object's PT_LOAD segments at run time (exec_only: executable ones only). */
void pfs_module_range(const struct dl_phdr_info *info, uint64_t *start, uint64_t *end, int exec_only);
/* An object's path: the loader's name, or for the main program /proc/self/exe read into buf. */
const char *pfs_module_name(const struct dl_phdr_info *info, char *buf, size_t len);

/* sites.c: stacks and the per-thread site cache. */
int pfs_unwind_capture(uint64_t *frames, unsigned max, int *truncated);
uint32_t pfs_stacks_intern(struct pfs_thread *t, const uint64_t *frames, uint32_t n, uint16_t flags);
uint32_t pfs_stacks_count(void);
/* The frames of stack `id` (valid for the process's life): their number, or -1 if unknown. */
int pfs_stacks_frames(uint32_t id, const uint64_t **frames);
void pfs_stacks_rewrite(struct pfs_thread *t);
void pfs_stacks_lock(void);
void pfs_stacks_unlock(void);
void pfs_stacks_child_reset(void);
uint32_t pfs_stacks_unknown(struct pfs_thread *t);
void pfs_unwind_fork_prepare(void);
void pfs_unwind_fork_parent(void);
void pfs_unwind_fork_child(void);
uint32_t pfs_site_lookup_slow(struct pfs_thread *t, struct pfs_cache_ent *e, int kind, uintptr_t ret,
			      uintptr_t sp);
void pfs_site_count_slow(struct pfs_thread *t, struct pfs_cache_ent *e, int kind, uintptr_t ret,
			 uintptr_t sp, uint64_t size);
void pfs_thread_reset_sites(struct pfs_thread *t);
void pfs_counters_total(uint64_t *count, uint64_t *bytes);

static inline struct pfs_cache_ent *pfs_cache_ent(struct pfs_thread *t, uintptr_t ret, uintptr_t sp,
						  int kind)
{
	uintptr_t h = (ret ^ (sp >> 4) ^ ((uintptr_t)kind << 7)) * 0x9E3779B97F4A7C15ull;
	return &t->cache[h >> (64 - 10)];
}

/* The stack id of a call site, from the cache when it can. */
static inline uint32_t pfs_site_lookup(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp)
{
	struct pfs_cache_ent *e = pfs_cache_ent(t, ret, sp, kind);
	if (PFS_LIKELY(e->ret == ret && e->sp == sp && e->kind == kind && !e->always_unwind &&
		       --e->verify != 0))
		return e->stack;
	return pfs_site_lookup_slow(t, e, kind, ret, sp);
}

/*
 * The stack id for an allocation that gets a record of its own (large
 * blocks, mappings): always unwound, since two call paths can share a
 * cache key (a wrapper called from two callers at the same stack depth)
 * and a record's site is what policies match and reports name.  A few
 * microseconds, paid by allocations that cost far more themselves.
 */
static inline uint32_t pfs_site_lookup_record(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp)
{
	return pfs_site_lookup_slow(t, pfs_cache_ent(t, ret, sp, kind), kind, ret, sp);
}

/* Counts one small allocation at its call site. */
static inline void pfs_site_count(struct pfs_thread *t, int kind, uintptr_t ret, uintptr_t sp, uint64_t size)
{
	struct pfs_cache_ent *e = pfs_cache_ent(t, ret, sp, kind);
	if (PFS_LIKELY(e->ret == ret && e->sp == sp && e->kind == kind && e->slot && !e->always_unwind &&
		       --e->verify != 0)) {
		e->slot->count++;
		e->slot->bytes += size;
		return;
	}
	pfs_site_count_slow(t, e, kind, ret, sp, size);
}

#endif
